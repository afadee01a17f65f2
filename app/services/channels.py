"""Channels: create and configure them, find the one an inbound message is addressed to."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, func, select

from app.extensions import db
from app.models import AuditLog, Channel, Team
from app.services.canned import check_placeholders
from app.services.errors import Conflict, NotFound, ValidationFailed
from connectors.base import CHANNEL_KINDS, Identity, InvalidIdentity

# Channels whose address is a customer-facing endpoint we must be able to recognise.
ADDRESS_KINDS = {"email": "email", "sms": "phone", "voice": "phone"}


# An email channel's automatic reply to new conversations (app.services.autoreply): when, and its placeholders.
AUTO_REPLY_WHEN = ("always", "outside_hours")
AUTO_REPLY_PLACEHOLDERS = ("customer.name", "customer.first_name", "conversation.number")
AUTO_REPLY_MAX_CHARS = 5000


def check_settings(kind: str, settings: dict[str, Any]) -> None:
    """Raise ValidationFailed for settings a channel of ``kind`` cannot use."""
    if "auto_reply" not in settings:
        return
    field = "settings.auto_reply"
    setting = settings["auto_reply"]
    if setting is None:  # off
        return
    if kind != "email":
        raise ValidationFailed("only email channels send automatic replies", fields={field: "email channels only"})
    if not isinstance(setting, dict) or set(setting) - {"text", "when"}:
        raise ValidationFailed("auto_reply must be an object with text and when", fields={field: "text, when"})
    text = setting.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > AUTO_REPLY_MAX_CHARS:
        raise ValidationFailed(
            "the auto-reply needs a text", fields={f"{field}.text": f"1 to {AUTO_REPLY_MAX_CHARS} characters"}
        )
    if setting.get("when", "always") not in AUTO_REPLY_WHEN:
        raise ValidationFailed(
            "unknown auto-reply condition", fields={f"{field}.when": f"one of {', '.join(AUTO_REPLY_WHEN)}"}
        )
    check_placeholders(text, AUTO_REPLY_PLACEHOLDERS, f"{field}.text")


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_address(kind: str, address: str | None, default_region: str | None = None) -> str | None:
    """Return the canonical address for a channel kind; raise ValidationFailed on a bad one."""
    if kind not in ADDRESS_KINDS:
        return address.strip() if address else None
    if not address:
        raise ValidationFailed(f"a {kind} channel needs an address", fields={"address": "required"})
    try:
        region = default_region or current_app.config["DEFAULT_PHONE_REGION"]
        return Identity.parse(ADDRESS_KINDS[kind], address, region).value
    except InvalidIdentity as exc:
        raise ValidationFailed(str(exc), fields={"address": exc.reason}) from None


def create_channel(
    kind: str,
    name: str,
    *,
    address: str | None = None,
    settings: dict[str, Any] | None = None,
    business_hours: dict[str, Any] | None = None,
    team_id: int | None = None,
    actor_id: int | None = None,
    default_region: str | None = None,
) -> tuple[Channel, str | None]:
    """Create a channel; an api channel also gets a bearer token, returned here and never again."""
    if kind not in CHANNEL_KINDS:
        raise ValidationFailed(f"unknown channel kind {kind!r}", fields={"kind": f"one of {', '.join(CHANNEL_KINDS)}"})
    address = normalize_address(kind, address, default_region)
    check_settings(kind, settings or {})
    if team_id is not None and db.session.get(Team, team_id) is None:
        raise NotFound(f"team {team_id} not found", fields={"team_id": "unknown team"})
    if address and db.session.scalar(select(Channel.id).where(Channel.kind == kind, Channel.address == address)):
        raise Conflict(f"a {kind} channel for {address} already exists", fields={"address": "already used"})
    channel = Channel(
        kind=kind,
        name=name,
        address=address,
        settings=settings or {},
        business_hours=business_hours,
        team_id=team_id,
    )
    token = None
    if kind == "api":
        token = secrets.token_urlsafe(32)
        channel.token_hash = _hash_token(token)
    db.session.add(channel)
    db.session.flush()
    db.session.add(
        AuditLog(
            actor_id=actor_id,
            action="channel.created",
            target_type="channel",
            target_id=channel.id,
            data={"kind": kind, "address": address},
        )
    )
    db.session.commit()
    return channel, token


_CHANNEL_BY_ID = select(Channel).where(Channel.id == bindparam("channel_id"))  # built once: it runs per request


def channel_for_token(channel_id: int, token: str) -> Channel | None:
    """Return the enabled api channel whose token this is, else None (in constant time per channel)."""
    channel = db.session.execute(_CHANNEL_BY_ID, {"channel_id": channel_id}).scalar()
    if channel is None or not channel.enabled or channel.token_hash is None:
        return None
    if not hmac.compare_digest(channel.token_hash, _hash_token(token)):
        return None
    return channel


def find_channel(kind: str, address: str) -> Channel | None:
    """Return the enabled channel of ``kind`` at ``address`` (case-insensitive), else None."""
    return db.session.scalar(
        select(Channel).where(
            Channel.kind == kind, func.lower(Channel.address) == address.strip().lower(), Channel.enabled.is_(True)
        )
    )


def first_channel(kind: str) -> Channel | None:
    """Return the oldest enabled channel of ``kind`` (the one outbound falls back to)."""
    return db.session.scalar(
        select(Channel).where(Channel.kind == kind, Channel.enabled.is_(True)).order_by(Channel.id).limit(1)
    )
