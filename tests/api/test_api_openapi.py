"""The OpenAPI document describes every /api/v1 route and is a valid OpenAPI 3.1 document."""

from __future__ import annotations

import re

from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError  # noqa: F401  (documents the failure type)

_CONVERTER = re.compile(r"<(?:[a-z]+(?:\([^)]*\))?:)?(\w+)>")


def test_openapi_document_lists_every_api_v1_route_and_method(app, anon_client):
    response = anon_client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json["paths"]

    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = _CONVERTER.sub(r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            if method.lower() not in paths.get(path, {}):
                missing.append(f"{method} {path}")
    assert missing == []
    assert "get" in paths["/api/v1/conversations"]
    assert "patch" in paths["/api/v1/conversations/{conversation_id}"]
    assert "post" in paths["/api/v1/customers/{customer_id}/merge"]


def test_openapi_document_validates_as_openapi_3_1(anon_client):
    document = anon_client.get("/api/v1/openapi.json").json

    assert document["openapi"].startswith("3.1")
    validate(document)  # raises OpenAPIValidationError with the offending path when invalid


def test_openapi_describes_roles_bodies_and_query_filters(anon_client):
    paths = anon_client.get("/api/v1/openapi.json").json["paths"]

    inbox = paths["/api/v1/conversations"]["get"]
    assert inbox["x-required-role"] == "agent"
    assert {p["name"] for p in inbox["parameters"]} >= {"status", "assignee", "team", "topic", "channel", "q", "cursor"}
    create_user = paths["/api/v1/users"]["post"]
    assert create_user["x-required-role"] == "admin"
    assert create_user["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/UserCreate")
    assert paths["/api/v1/auth/login"]["post"]["security"] == []


def test_the_reply_endpoint_documents_its_multipart_form_with_files(anon_client):
    spec = anon_client.get("/api/v1/openapi.json").get_json()
    body = spec["paths"]["/api/v1/conversations/{conversation_id}/messages"]["post"]["requestBody"]["content"]
    assert "application/json" in body
    form = body["multipart/form-data"]["schema"]["allOf"]
    assert form[0] == body["application/json"]["schema"]
    assert form[1]["properties"]["files"] == {"type": "array", "items": {"type": "string", "format": "binary"}}
