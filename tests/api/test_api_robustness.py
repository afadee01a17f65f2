"""Hostile or out-of-range input is refused with a JSON 4xx on both backends, never a 500."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

BIG = 10**20  # past 64 bits: never an id, and more than SQLite can bind


def _cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode()


@pytest.fixture
def ids(conversation: dict[str, Any]) -> dict[str, int]:
    return {"conversation": conversation["conversation"]["id"], "customer": conversation["customer"]["id"]}


def _requests(ids: dict[str, int]) -> list[tuple[str, str, Any, set[int]]]:
    conv, cust = ids["conversation"], ids["customer"]
    return [
        ("get", f"/api/v1/conversations/{BIG}", None, {404}),
        ("get", f"/api/v1/customers/{BIG}/timeline", None, {404}),
        ("get", f"/api/v1/conversations?customer={BIG}", None, {422}),
        ("get", f"/api/v1/conversations?cursor={_cursor('2026-01-01T00:00:00+00:00', BIG)}", None, {400}),
        ("get", f"/api/v1/conversations?cursor={_cursor('0001-01-01T00:00:00+05:00', 1)}", None, {400}),
        ("get", f"/api/v1/conversations?cursor={_cursor('2026-01-01', 'x')}", None, {400}),
        ("get", f"/api/v1/customers?cursor={_cursor(True)}", None, {400}),
        ("get", "/api/v1/conversations?q=%00", None, {422}),
        ("get", "/api/v1/customers?q=a%00b", None, {422}),
        ("patch", f"/api/v1/conversations/{conv}", {"assignee_id": BIG}, {422}),
        ("patch", f"/api/v1/conversations/{conv}", {"team_id": -1}, {422}),
        ("patch", f"/api/v1/conversations/{conv}", {"snoozed_until": "9999-12-31T23:59:59-05:00"}, {422}),
        ("post", f"/api/v1/customers/{cust}/merge", {"source_id": BIG}, {422}),
        ("post", f"/api/v1/customers/{cust}/identities", {"kind": "email", "value": "x\x00@example.com"}, {422}),
        ("patch", f"/api/v1/customers/{cust}", {"name": "Anna\x00"}, {422}),
        ("post", f"/api/v1/conversations/{conv}/messages", {"body": "\x00hi", "private": True}, {422}),
        ("post", f"/api/v1/conversations/{conv}/messages", {"body": "x" * 200_001}, {422}),
        ("post", f"/api/v1/conversations/{conv}/messages", {"body": "hi", "channel": "fax"}, {422}),
        ("post", "/api/v1/teams", {"name": "x", "member_ids": [BIG]}, {422}),
        (
            "post",
            "/api/v1/users",
            {"email": "a@b.example", "name": "x", "password": "12345678", "team_ids": [0]},
            {422},
        ),
        ("patch", "/api/v1/me", {"name": "\x00"}, {422}),
    ]


def test_out_of_range_and_hostile_input_is_refused_cleanly(admin_client, ids):
    for method, url, body, expected in _requests(ids):
        response = admin_client.get(url) if body is None else getattr(admin_client, method)(url, json=body)
        assert response.status_code in expected, f"{method} {url[:80]} → {response.status_code} {response.data[:200]}"
        assert response.is_json
        assert "error" in response.json
