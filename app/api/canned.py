"""Canned responses: every agent reads them, admins manage them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask_login import current_user
from pydantic import Field

from app.api.auth import role_required
from app.api.validation import Schema, documented, validate
from app.extensions import db
from app.models import CannedResponse
from app.serializers import iso
from app.services.canned import PLACEHOLDERS, create_canned, delete_canned, list_canned, update_canned
from app.services.errors import NotFound

bp = Blueprint("canned", __name__, url_prefix="/api/v1/canned-responses")


def canned_dict(item: CannedResponse) -> dict[str, Any]:
    return {
        "id": item.id,
        "shortcut": item.shortcut,
        "title": item.title,
        "body": item.body,
        "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
    }


class CannedCreate(Schema):
    shortcut: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=255)
    body: str = Field(min_length=1, max_length=20000)


class CannedUpdate(Schema):
    shortcut: str | None = Field(default=None, min_length=1, max_length=64)
    title: str | None = Field(default=None, min_length=1, max_length=255)
    body: str | None = Field(default=None, min_length=1, max_length=20000)


@bp.get("")
@role_required("agent")
@documented(summary="List canned responses and the placeholders their bodies may use")
def index() -> Any:
    """List every canned response."""
    return jsonify(items=[canned_dict(item) for item in list_canned()], placeholders=list(PLACEHOLDERS))


@bp.post("")
@role_required("admin")
@validate(body=CannedCreate)
@documented(summary="Create a canned response")
def create(body: CannedCreate) -> Any:
    """Create a canned response."""
    item = create_canned(body.shortcut, body.title, body.body, actor_id=current_user.id)
    return jsonify(canned_dict(item)), 201


@bp.get("/<int:item_id>")
@role_required("agent")
@documented(summary="Show one canned response")
def detail(item_id: int) -> Any:
    """Show one canned response."""
    item = db.session.get(CannedResponse, item_id)
    if item is None:
        raise NotFound(f"canned response {item_id} not found")
    return jsonify(canned_dict(item))


@bp.patch("/<int:item_id>")
@role_required("admin")
@validate(body=CannedUpdate)
@documented(summary="Change a canned response")
def update(item_id: int, body: CannedUpdate) -> Any:
    """Change a canned response's shortcut, title or body."""
    changes = {field: getattr(body, field) for field in body.model_fields_set if getattr(body, field) is not None}
    item = update_canned(item_id, changes, actor_id=current_user.id)
    return jsonify(canned_dict(item))


@bp.delete("/<int:item_id>")
@role_required("admin")
@documented(summary="Delete a canned response")
def delete(item_id: int) -> Any:
    """Delete a canned response."""
    delete_canned(item_id, actor_id=current_user.id)
    return jsonify(ok=True)
