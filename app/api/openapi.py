"""The OpenAPI 3.1 document, generated from the routes, their validators and their role checks."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from pydantic import BaseModel

from app.api.auth import public
from app.api.validation import documented

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

_CONVERTER = re.compile(r"<(?:(?P<conv>[a-z]+):)?(?P<name>\w+)>")
_DOCUMENTED_PREFIXES = ("/api/", "/webhooks/", "/healthz")
_ERROR_RESPONSE = {
    "description": "JSON error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params = []
    for match in _CONVERTER.finditer(rule):
        kind = "integer" if match["conv"] == "int" else "string"
        params.append({"name": match["name"], "in": "path", "required": True, "schema": {"type": kind}})
    return _CONVERTER.sub(r"{\g<name>}", rule), params


def _schema_ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build_document(app: Flask) -> dict[str, Any]:
    """Describe every API, webhook and health route of ``app``."""
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(_DOCUMENTED_PREFIXES):
            continue
        view = app.view_functions[rule.endpoint]
        info: dict[str, Any] = getattr(view, "openapi", {})
        path, params = _path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation: dict[str, Any] = {
                "operationId": f"{rule.endpoint}.{method.lower()}",
                "summary": info.get("summary") or (view.__doc__ or "").strip().partition("\n")[0],
                "tags": [rule.endpoint.split(".")[0]],
                "parameters": list(params),
                "responses": {"200": {"description": "OK"}, "default": _ERROR_RESPONSE},
            }
            role = getattr(view, "required_role", None)
            if role:
                operation["security"] = [{"session": []}]
                operation["x-required-role"] = role
            elif getattr(view, "is_public", False):
                operation["security"] = []
            if (query := info.get("query")) is not None:
                for name, field in query.model_fields.items():
                    operation["parameters"].append(
                        {
                            "name": name,
                            "in": "query",
                            "required": field.is_required(),
                            "schema": query.model_json_schema()["properties"].get(name, {}),
                        }
                    )
            if (body := info.get("body")) is not None and method in ("POST", "PUT", "PATCH"):
                schema = _schema_ref(body, components)
                content: dict[str, Any] = {"application/json": {"schema": schema}}
                if files := info.get("files"):
                    uploads = {"type": "array", "items": {"type": "string", "format": "binary"}}
                    content["multipart/form-data"] = {
                        "schema": {"allOf": [schema, {"type": "object", "properties": {files: uploads}}]}
                    }
                operation["requestBody"] = {"required": True, "content": content}
            if (response := info.get("response")) is not None:
                operation["responses"]["200"] = {
                    "description": "OK",
                    "content": {"application/json": {"schema": _schema_ref(response, components)}},
                }
            paths.setdefault(path, {})[method.lower()] = operation
    components["Error"] = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Switchboard API",
            "version": "1.0.0",
            "description": "Unified inbox: conversations, customers, channels, topics, reports.",
        },
        "servers": [{"url": current_app.config["PUBLIC_URL"]}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "session"}},
        },
    }


@bp.get("/openapi.json")
@public
@documented(summary="This document")
def openapi() -> Any:
    """Serve the OpenAPI document."""
    return jsonify(build_document(current_app))
