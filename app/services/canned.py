"""Canned responses: create, change and delete the snippets agents insert into replies."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditLog, CannedResponse, utcnow
from app.services.errors import Conflict, NotFound, ValidationFailed

SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# Placeholders the console fills in when an agent inserts the snippet.
PLACEHOLDERS: tuple[str, ...] = (
    "customer.name",
    "customer.first_name",
    "agent.name",
    "agent.first_name",
    "conversation.number",
)
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_.]+)\s*\}\}")


def check_placeholders(body: str, known: tuple[str, ...], field: str) -> None:
    """Raise ValidationFailed (naming ``field``) if ``body`` uses a ``{{ name }}`` placeholder not in ``known``."""
    unknown = sorted({name for name in _PLACEHOLDER.findall(body) if name not in known})
    if unknown:
        raise ValidationFailed("unknown placeholder", fields={field: f"unknown placeholder(s): {', '.join(unknown)}"})


def fill_placeholders(body: str, values: dict[str, str]) -> str:
    """Replace ``{{ name }}`` placeholders with ``values``; unknown ones stay as they are."""
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), body)


def _check(shortcut: str | None, body: str | None, *, exclude_id: int | None = None) -> None:
    if shortcut is not None:
        if not SHORTCUT.match(shortcut):
            raise ValidationFailed(
                "bad shortcut", fields={"shortcut": "lower-case letters, digits, '-' or '_', up to 64"}
            )
        query = select(CannedResponse.id).where(func.lower(CannedResponse.shortcut) == shortcut)
        if exclude_id is not None:
            query = query.where(CannedResponse.id != exclude_id)
        if db.session.scalar(query) is not None:
            raise Conflict(f"shortcut {shortcut!r} is taken", fields={"shortcut": "already used"})
    if body is not None:
        check_placeholders(body, PLACEHOLDERS, "body")


def list_canned() -> list[CannedResponse]:
    """Return every canned response, by shortcut."""
    return list(db.session.scalars(select(CannedResponse).order_by(CannedResponse.shortcut)))


def create_canned(shortcut: str, title: str, body: str, *, actor_id: int | None) -> CannedResponse:
    """Create a canned response; raise Conflict when the shortcut is taken."""
    shortcut = shortcut.strip().lower()
    _check(shortcut, body)
    item = CannedResponse(shortcut=shortcut, title=title, body=body, created_by_id=actor_id)
    db.session.add(item)
    db.session.flush()
    db.session.add(
        AuditLog(
            actor_id=actor_id,
            action="canned.created",
            target_type="canned_response",
            target_id=item.id,
            data={"shortcut": shortcut},
        )
    )
    db.session.commit()
    return item


def update_canned(item_id: int, changes: dict[str, Any], *, actor_id: int | None) -> CannedResponse:
    """Change a canned response's shortcut, title or body."""
    item = db.session.get(CannedResponse, item_id)
    if item is None:
        raise NotFound(f"canned response {item_id} not found")
    if "shortcut" in changes:
        changes["shortcut"] = changes["shortcut"].strip().lower()
    _check(changes.get("shortcut"), changes.get("body"), exclude_id=item.id)
    for field, value in changes.items():
        setattr(item, field, value)
    item.updated_at = utcnow()
    db.session.add(
        AuditLog(
            actor_id=actor_id,
            action="canned.updated",
            target_type="canned_response",
            target_id=item.id,
            data={"fields": sorted(changes)},
        )
    )
    db.session.commit()
    return item


def delete_canned(item_id: int, *, actor_id: int | None) -> None:
    """Delete a canned response."""
    item = db.session.get(CannedResponse, item_id)
    if item is None:
        raise NotFound(f"canned response {item_id} not found")
    db.session.add(
        AuditLog(
            actor_id=actor_id,
            action="canned.deleted",
            target_type="canned_response",
            target_id=item.id,
            data={"shortcut": item.shortcut},
        )
    )
    db.session.delete(item)
    db.session.commit()
