"""Login attempts are rate-limited per client address, and the refusal is JSON like every other error."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "RATELIMIT_ENABLED": True, "LOGIN_RATE_LIMIT": "3 per minute"}


def test_too_many_login_attempts_get_429_json(anon_client, make_user):
    user = make_user("agent")
    answers = [
        anon_client.post("/api/v1/auth/login", json={"email": user.email, "password": "wrong"}).status_code
        for _ in range(3)
    ]

    limited = anon_client.post("/api/v1/auth/login", json={"email": user.email, "password": "wrong"})

    assert answers == [401, 401, 401]
    assert limited.status_code == 429
    assert limited.is_json
    assert limited.json["error"]["code"] == "rate_limited"
    # The limit applies to the right password too: guessing cannot continue past it.
    assert anon_client.login(user.email).status_code == 429
