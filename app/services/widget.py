"""The chat widget's domain: visitor tokens, identity verification, pre-chat details, a visitor's own history.

Who a visitor is:
- every browser gets a random visitor id inside a token signed with SECRET_KEY; its chat identity
  ``<channel id>:<visitor id>`` is verified (we minted it);
- a shop may vouch for its logged-in user with HMAC-SHA256(user id, channel secret); only then is the visitor
  linked to that customer's ``external`` identity, so one shop user is one customer across devices;
- an email typed into the pre-chat form is a claim: it is stored as an unverified identity when nobody owns
  that address yet, only noted on the visitor's customer when somebody does, and never merges customers.

What a visitor sees: chat messages of their current conversation that were sent by or to their own chat
identity (all of the customer's chat identities once HMAC-verified). Never notes, calls, emails or SMS, which
may involve an address the visitor merely claimed.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.events import CUSTOMER_UPDATED, MESSAGES_READ, Event, publish
from app.extensions import db
from app.models import Attachment, Channel, Conversation, Customer, CustomerIdentity, Message, User, utcnow
from app.serializers import customer_dict, iso
from app.services import attachments as files
from app.services.customers import add_identity, find_identity, find_or_create_customer, surviving_customer
from app.services.errors import Conflict, DomainError, NotFound, ValidationFailed
from app.services.hours import InvalidSchedule, is_open
from app.services.ingest import IngestResult, ingest
from app.services.notify import delivery_changed
from connectors.base import Attachment as InboundAttachment
from connectors.base import Identity, InvalidIdentity
from connectors.chat.payload import (
    ChatMessage,
    InvalidPayload,
    build_inbound,
    clean_line,
    clean_text,
    origin_allowed,
    safe_filename,
    sniff_content_type,
    verify_user_hash,
    visitor_identity,
)

log = logging.getLogger(__name__)

TOKEN_SALT = "switchboard.widget.visitor.v1"
UPLOAD_SALT = "switchboard.widget.upload.v1"
UPLOAD_MAX_AGE = 24 * 3600
HISTORY_PAGE = 50
MAX_PRECHAT_FIELDS = 10

DEFAULT_PRECHAT_FIELDS: tuple[dict[str, Any], ...] = (
    {"name": "name", "type": "text", "required": False},
    {"name": "email", "type": "email", "required": False},
)
DEFAULT_ATTACHMENT_TYPES: tuple[str, ...] = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
)
DEFAULT_MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
FIELD_TYPES = ("text", "email", "tel", "textarea")


class VerificationFailed(DomainError):
    """The host page's user id and HMAC do not match: the visitor is refused, not silently downgraded."""

    code = "verification_failed"


@dataclass(frozen=True, slots=True)
class Visitor:
    """One browser on one widget channel; ``user_id`` is the shop's user id, set only when HMAC-verified."""

    channel_id: int
    visitor_id: str
    user_id: str | None = None

    @property
    def identity(self) -> Identity:
        return visitor_identity(self.channel_id, self.visitor_id)

    @property
    def room(self) -> str:
        return f"visitor:{self.channel_id}:{self.visitor_id}"


@dataclass(frozen=True, slots=True)
class WidgetSettings:
    """A chat channel's ``settings``, normalised; ``public()`` is the part the widget may see."""

    title: str
    allowed_origins: tuple[str, ...]
    identity_secret: str | None
    external_id_prefix: str
    prechat_fields: tuple[dict[str, Any], ...]
    attachment_types: tuple[str, ...]
    max_attachment_bytes: int
    offline_message: Any
    greeting: Any
    locale: str | None
    color: str | None

    @classmethod
    def of(cls, channel: Channel) -> WidgetSettings:
        raw = dict(channel.settings or {})
        origins = raw.get("allowed_origins") or []
        fields = raw.get("prechat_fields")
        types = raw.get("attachment_types")
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        size = raw.get("max_attachment_bytes")
        return cls(
            title=channel.name,
            # A wildcard is dropped, never honoured: an embedding site has to be named.
            allowed_origins=tuple(o for o in origins if isinstance(o, str) and o.strip() not in ("*", "")),
            identity_secret=raw.get("identity_secret") or None,
            external_id_prefix=str(raw.get("external_id_prefix") or ""),
            prechat_fields=_prechat_fields(DEFAULT_PRECHAT_FIELDS if fields is None else fields),
            attachment_types=tuple(t.lower() for t in (types or DEFAULT_ATTACHMENT_TYPES) if isinstance(t, str)),
            max_attachment_bytes=min(int(size), limit)
            if isinstance(size, int) and size > 0
            else min(DEFAULT_MAX_ATTACHMENT_BYTES, limit),
            offline_message=raw.get("offline_message"),
            greeting=raw.get("greeting"),
            locale=raw.get("locale") if raw.get("locale") in ("en", "pl") else None,
            color=raw.get("color") if _is_colour(raw.get("color")) else None,
        )

    def public(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "prechat_fields": list(self.prechat_fields),
            "attachment_types": list(self.attachment_types),
            "max_attachment_bytes": self.max_attachment_bytes,
            "offline_message": self.offline_message,
            "greeting": self.greeting,
            "locale": self.locale,
            "color": self.color,
            "identity_verification": self.identity_secret is not None,
        }


def _is_colour(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 7
        and value[0] == "#"
        and all(ch in "0123456789abcdefABCDEF" for ch in value[1:])
    )


def _prechat_fields(value: Any) -> tuple[dict[str, Any], ...]:
    """Keep well-formed field definitions only: {name, type?, required?, label?: str | {en, pl}}."""
    fields: list[dict[str, Any]] = []
    for item in value if isinstance(value, list | tuple) else []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        name = item["name"].strip()
        if not name or len(name) > 40 or not name.replace("_", "").isalnum():
            continue
        kind = item.get("type") if item.get("type") in FIELD_TYPES else "email" if name == "email" else "text"
        entry: dict[str, Any] = {"name": name, "type": kind, "required": bool(item.get("required", False))}
        label = item.get("label")
        if isinstance(label, str) or (isinstance(label, dict) and all(isinstance(v, str) for v in label.values())):
            entry["label"] = label
        fields.append(entry)
    return tuple(fields[:MAX_PRECHAT_FIELDS])


def widget_channel(channel_id: int) -> Channel:
    """Return the enabled chat channel ``channel_id``; raise NotFound for anything else."""
    channel = db.session.get(Channel, channel_id)
    if channel is None or channel.kind != "chat" or not channel.enabled:
        raise NotFound(f"chat channel {channel_id} not found")
    return channel


def host_allowed(channel: Channel, origin: str | None) -> bool:
    """Return whether a page at ``origin`` may embed this channel's widget."""
    return origin_allowed(origin, list(WidgetSettings.of(channel).allowed_origins))


# --- visitor tokens -----------------------------------------------------------------------------------------


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.config["SECRET_KEY"]), salt=salt)


def issue_token(visitor: Visitor) -> str:
    """Return the signed token the widget keeps in its storage to come back as the same visitor."""
    payload: dict[str, Any] = {"c": visitor.channel_id, "v": visitor.visitor_id}
    if visitor.user_id is not None:
        payload["u"] = visitor.user_id
    return _serializer(TOKEN_SALT).dumps(payload)


def read_token(token: str | None, channel_id: int | None = None) -> Visitor | None:
    """Return the visitor a genuine, unexpired token names (on ``channel_id`` when given), else None."""
    if not token or not isinstance(token, str) or len(token) > 2048:
        return None
    max_age = int(current_app.config.get("WIDGET_TOKEN_MAX_AGE_DAYS", 365)) * 86400
    try:
        payload = _serializer(TOKEN_SALT).loads(token, max_age=max_age)
    except BadSignature:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("c"), int) or not isinstance(payload.get("v"), str):
        return None
    if channel_id is not None and payload["c"] != channel_id:
        return None
    user_id = payload.get("u")
    return Visitor(payload["c"], payload["v"], user_id if isinstance(user_id, str) else None)


def new_visitor(channel_id: int, user_id: str | None = None) -> Visitor:
    return Visitor(channel_id, secrets.token_urlsafe(16), user_id)


# --- sessions -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class WidgetSession:
    visitor: Visitor
    token: str
    customer: Customer | None
    conversation: Conversation | None
    settings: WidgetSettings

    def to_dict(self) -> dict[str, Any]:
        customer = self.customer
        prechat = (customer.attributes or {}).get("prechat", {}) if customer else {}
        return {
            "token": self.token,
            "visitor": {
                "name": customer.name if customer else None,
                "has_email": bool(prechat.get("email")) or self._has_email(),
                "verified": self.visitor.user_id is not None,
                # The pre-chat form was answered already (its answers are on the customer, not in the browser).
                "prechat_done": bool(customer is not None and (customer.name or prechat)),
            },
            "conversation_id": self.conversation.id if self.conversation else None,
            "config": self.settings.public(),
        }

    def _has_email(self) -> bool:
        return self.customer is not None and any(i.kind == "email" for i in self.customer.identities)


def resolve_visitor(channel: Channel, token: str | None, user_id: str | None, given_hash: str | None) -> Visitor:
    """Return who this browser is, checking the shop's HMAC when a user id is passed.

    A verified user gets a visitor of their own: an anonymous chat from before the login, or another user's
    chat on a shared computer, is never carried into their account (and the reverse after a logout).
    """
    settings = WidgetSettings.of(channel)
    current = read_token(token, channel.id)
    if user_id is not None:
        if settings.identity_secret is None:
            raise VerificationFailed(
                "identity verification is not set up for this channel", fields={"user_hash": "no secret"}
            )
        if not verify_user_hash(settings.identity_secret, user_id, given_hash):
            raise VerificationFailed("user_hash does not match user_id", fields={"user_hash": "does not match"})
        if current is not None and current.user_id == user_id:
            return current
        return new_visitor(channel.id, user_id)
    if current is not None and current.user_id is None:
        return current
    return new_visitor(channel.id)


def start_session(
    channel: Channel,
    *,
    token: str | None,
    user_id: str | None = None,
    user_hash: str | None = None,
    name: str | None = None,
    email: str | None = None,
    fields: dict[str, Any] | None = None,
) -> WidgetSession:
    """Issue or restore a visitor token, link a verified user, and record any pre-chat details."""
    if user_id is not None:
        try:
            user_id = Identity.parse("external", user_id).value
        except InvalidIdentity as exc:
            raise ValidationFailed(str(exc), fields={"user_id": exc.reason}) from None
    visitor = resolve_visitor(channel, token, user_id, user_hash)
    settings = WidgetSettings.of(channel)
    customer: Customer | None = None
    if visitor.user_id is not None:
        customer = _link_verified_user(visitor, settings)
    if name or email or fields:
        customer = record_details(channel, visitor, name=name, email=email, fields=fields)
    if customer is None:
        customer = visitor_customer(visitor)
    conversation = visible_conversation(visitor)
    return WidgetSession(visitor, issue_token(visitor), customer, conversation, settings)


def _retrying(action: Any) -> Any:
    """Run ``action`` again after a concurrent insert of the same identity (two tabs at once)."""
    for attempt in range(3):
        try:
            return action()
        except IntegrityError:
            db.session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _link_verified_user(visitor: Visitor, settings: WidgetSettings) -> Customer:
    """Attach this visitor's chat identity to the customer owning the shop user's external identity."""
    assert visitor.user_id is not None
    external = Identity.parse("external", settings.external_id_prefix + visitor.user_id)

    def link() -> Customer:
        customer, _, _ = find_or_create_customer(external, source="chat", verified=True)
        chat = find_identity(visitor.identity)
        if chat is None:
            db.session.add(
                CustomerIdentity(
                    customer_id=customer.id, kind="chat", value=visitor.identity.value, verified=True, source="chat"
                )
            )
        elif surviving_customer(chat.customer).id != customer.id:
            # Cannot happen with fresh visitor ids; refuse rather than move an identity between customers.
            raise Conflict("this visitor belongs to another customer", code="visitor_taken")
        customer.last_seen_at = utcnow()
        db.session.flush()
        publish(db.session, Event(CUSTOMER_UPDATED, {"customer": customer_dict(customer)}))
        db.session.commit()
        return customer

    return _retrying(link)


def visitor_customer(visitor: Visitor) -> Customer | None:
    """Return the customer behind this visitor, or None before their first message or pre-chat form."""
    identity = find_identity(visitor.identity)
    return surviving_customer(identity.customer) if identity is not None else None


def record_details(
    channel: Channel,
    visitor: Visitor,
    *,
    name: str | None = None,
    email: str | None = None,
    fields: dict[str, Any] | None = None,
) -> Customer:
    """Store what the visitor typed into the pre-chat (or offline) form on their customer.

    The email is the visitor's claim: it becomes an unverified identity only when no other customer owns
    that address; otherwise it is noted for the agent and the customers stay apart.
    """
    clean_name = _clean_optional_line(name, 255, "name")
    email_identity = None
    if email:
        try:
            email_identity = Identity.parse("email", email[:320])
        except InvalidIdentity as exc:
            raise ValidationFailed(str(exc), fields={"email": exc.reason}) from None
    extra = _clean_fields(fields, WidgetSettings.of(channel))

    def store() -> Customer:
        customer, _, _ = find_or_create_customer(visitor.identity, name=clean_name, source="chat", verified=True)
        if clean_name and visitor.user_id is None:
            customer.name = clean_name  # an anonymous visitor's customer is theirs alone to name
        prechat = dict((customer.attributes or {}).get("prechat") or {})
        prechat.update(extra)
        if email_identity is not None:
            prechat["email"] = email_identity.value
            prechat["email_verified"] = False
        customer.attributes = {**(customer.attributes or {}), "prechat": prechat}
        customer.updated_at = utcnow()
        publish(db.session, Event(CUSTOMER_UPDATED, {"customer": customer_dict(customer)}))
        db.session.commit()
        return customer

    customer = _retrying(store)
    if email_identity is not None:
        try:
            add_identity(customer.id, "email", email_identity.value, source="prechat", verified=False)
        except Conflict:
            # Someone else's address (or a race for it): the claim stays a note on this customer.
            db.session.rollback()
            log.info("pre-chat email %s belongs to another customer; not linked", email_identity.value)
        db.session.refresh(customer)
    return customer


def _clean_optional_line(value: str | None, limit: int, name: str) -> str | None:
    try:
        return clean_line(value, limit, field_name=name) or None
    except InvalidPayload as exc:
        raise ValidationFailed(str(exc), fields={name: exc.reason}) from None


def _clean_fields(fields: dict[str, Any] | None, settings: WidgetSettings) -> dict[str, str]:
    """Keep only the configured custom pre-chat fields, as bounded plain text."""
    allowed = {f["name"]: f for f in settings.prechat_fields if f["name"] not in ("name", "email")}
    cleaned: dict[str, str] = {}
    for key, value in (fields or {}).items():
        if key not in allowed or value is None:
            continue
        try:
            if allowed[key]["type"] == "textarea":
                cleaned[key] = clean_text(str(value), 2000, field_name=key)
            else:
                cleaned[key] = clean_line(str(value), 255, field_name=key)
        except InvalidPayload as exc:
            raise ValidationFailed(str(exc), fields={key: exc.reason}) from None
    return cleaned


# --- what a visitor may see ---------------------------------------------------------------------------------


def scope_identity_ids(visitor: Visitor) -> list[int]:
    """Return the identities whose chat messages this visitor may see."""
    identity = find_identity(visitor.identity)
    if identity is None:
        return []
    if visitor.user_id is None:
        return [identity.id]
    customer = surviving_customer(identity.customer)
    # Verified: the same shop user on their other devices.
    return list(
        db.session.scalars(
            select(CustomerIdentity.id).where(
                CustomerIdentity.customer_id == customer.id, CustomerIdentity.kind == "chat"
            )
        )
    )


def visible_conversation(visitor: Visitor, scope: list[int] | None = None) -> Conversation | None:
    """Return the conversation of this visitor's latest chat message, if any."""
    scope = scope_identity_ids(visitor) if scope is None else scope
    if not scope:
        return None
    conversation_id = db.session.scalar(
        select(Message.conversation_id)
        .where(Message.identity_id.in_(scope), Message.channel == "chat", Message.kind == "message")
        .order_by(Message.id.desc())
        .limit(1)
    )
    return db.session.get(Conversation, conversation_id) if conversation_id is not None else None


def _visible(scope: list[int]) -> Any:
    return (Message.identity_id.in_(scope), Message.channel == "chat", Message.kind == "message")


def history(
    visitor: Visitor, *, before: int | None = None, limit: int = HISTORY_PAGE
) -> tuple[Conversation | None, list[dict[str, Any]], bool]:
    """Return the visitor's conversation, its visible messages oldest first, and whether older ones exist."""
    scope = scope_identity_ids(visitor)
    conversation = visible_conversation(visitor, scope)
    if conversation is None:
        return None, [], False
    query = select(Message).where(Message.conversation_id == conversation.id, *_visible(scope))
    if before is not None:
        query = query.where(Message.id < before)
    rows = list(db.session.scalars(query.order_by(Message.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = list(reversed(rows[:limit]))
    return conversation, widget_messages(rows), more


def widget_messages(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """Serialise messages for the widget: what the customer may see and nothing else."""
    messages = list(messages)
    author_ids = {m.author_id for m in messages if m.author_id is not None}
    names = (
        dict(db.session.execute(select(User.id, User.name).where(User.id.in_(author_ids))).tuples().all())
        if author_ids
        else {}
    )
    return [widget_message(m, names.get(m.author_id) if m.author_id else None) for m in messages]


def widget_message(message: Message, author_name: str | None = None) -> dict[str, Any]:
    meta = message.meta or {}
    return {
        "id": message.id,
        "client_id": meta.get("client_id"),
        "direction": message.direction,
        "text": message.text,
        "created_at": iso(message.created_at),
        "delivery_status": message.delivery_status,
        "read_at": meta.get("read_at"),
        "author_name": author_name,
        "attachments": [
            widget_attachment(attachment.id, attachment.filename, attachment.content_type, attachment.size)
            for attachment in message.attachments
        ],
    }


def widget_attachment(attachment_id: int, filename: str, content_type: str, size: int) -> dict[str, Any]:
    """A file as the widget shows it (the visitor's or the agent's): its link is the widget's own file route,
    which opens only with the token of a visitor who may see the message."""
    return {
        "id": attachment_id,
        "filename": filename,
        "content_type": content_type,
        "size": size,
        "url": f"/api/v1/widget/attachments/{attachment_id}",
    }


def visible_attachment(visitor: Visitor, attachment_id: int) -> Attachment:
    """Return an attachment of a message this visitor may see; raise NotFound for anything else."""
    attachment = db.session.get(Attachment, attachment_id)
    scope = scope_identity_ids(visitor)
    if attachment is None or not scope:
        raise NotFound("attachment not found")
    allowed = db.session.scalar(select(Message.id).where(Message.id == attachment.message_id, *_visible(scope)))
    if allowed is None:
        raise NotFound("attachment not found")
    return attachment


def conversation_agent(conversation: Conversation | None) -> User | None:
    """Return the agent the visitor is talking to: the assignee, else whoever answered on chat last."""
    if conversation is None:
        return None
    if conversation.assignee_id is not None:
        return db.session.get(User, conversation.assignee_id)
    author_id = db.session.scalar(
        select(Message.author_id)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == "out",
            Message.kind == "message",
            Message.author_id.is_not(None),
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
    return db.session.get(User, author_id) if author_id is not None else None


@dataclass(slots=True)
class ChannelStatus:
    open: bool
    online: bool
    agent: dict[str, Any] | None = None
    agents_online: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"open": self.open, "online": self.online, "agent": self.agent, "agents_online": self.agents_online}


def channel_status(
    channel: Channel, online_user_ids: Iterable[int], conversation: Conversation | None = None
) -> ChannelStatus:
    """Say whether the widget is staffed now: within business hours and an available agent connected."""
    try:
        within_hours = is_open(channel.business_hours, utcnow())
    except InvalidSchedule:
        log.warning("channel %s has malformed business hours; treating it as open", channel.id)
        within_hours = True
    ids = set(online_user_ids)
    agents: list[User] = []
    if ids:
        agents = list(
            db.session.scalars(select(User).where(User.id.in_(ids), User.active.is_(True), User.available.is_(True)))
        )
        if channel.team_id is not None:
            agents = [user for user in agents if any(team.id == channel.team_id for team in user.teams)]
    agent = conversation_agent(conversation)
    agent_info = None
    if agent is not None:
        agent_info = {"name": agent.name, "online": within_hours and any(user.id == agent.id for user in agents)}
    return ChannelStatus(
        open=within_hours, online=within_hours and bool(agents), agent=agent_info, agents_online=len(agents)
    )


# --- messages -----------------------------------------------------------------------------------------------


def store_upload(
    channel: Channel, visitor: Visitor, data: bytes, filename: str | None, claimed_type: str | None
) -> dict[str, Any]:
    """Check an uploaded file against the channel's limits, store it, and return a token to send it with."""
    settings = WidgetSettings.of(channel)
    if len(data) > settings.max_attachment_bytes:
        raise ValidationFailed(
            f"the file is larger than {settings.max_attachment_bytes} bytes",
            code="too_large",
            fields={"file": "too large"},
        )
    if not data:
        raise ValidationFailed("the file is empty", fields={"file": "empty"})
    content_type = sniff_content_type(data, claimed_type)
    if content_type not in settings.attachment_types:
        raise ValidationFailed(
            f"files of type {content_type} are not accepted here",
            code="unsupported_type",
            fields={"file": f"one of {', '.join(settings.attachment_types)}"},
        )
    digest = files.store_bytes(data)
    name = safe_filename(filename)
    token = _serializer(UPLOAD_SALT).dumps(
        {"c": channel.id, "v": visitor.visitor_id, "s": digest, "n": name, "t": content_type}
    )
    return {"token": token, "filename": name, "content_type": content_type, "size": len(data)}


def read_upload(token: str, visitor: Visitor) -> InboundAttachment:
    """Return the stored file an upload token names, if this visitor uploaded it; raise InvalidPayload."""
    try:
        payload = _serializer(UPLOAD_SALT).loads(token, max_age=UPLOAD_MAX_AGE)
    except BadSignature:
        raise InvalidPayload("attachments", "unknown or expired upload") from None
    if payload.get("c") != visitor.channel_id or payload.get("v") != visitor.visitor_id:
        raise InvalidPayload("attachments", "unknown or expired upload")
    try:
        data = files.read_bytes(payload["s"])
    except (OSError, ValueError):
        raise InvalidPayload("attachments", "the uploaded file is gone; upload it again") from None
    return InboundAttachment(filename=payload["n"], content_type=payload["t"], data=data)


def post_message(
    channel: Channel, visitor: Visitor, message: ChatMessage, metadata: dict[str, Any] | None = None
) -> IngestResult:
    """Ingest a widget message; a retry with the same client id returns the stored one (nothing new)."""
    attachments = [read_upload(token, visitor) for token in message.attachment_tokens]
    inbound = build_inbound(
        channel_id=channel.id,
        visitor_id=visitor.visitor_id,
        message=message,
        sender_name=None,
        attachments=attachments,
        metadata=dict(metadata or {}),
    )
    return ingest(inbound, channel)


def mark_read_by_visitor(visitor: Visitor, up_to_id: int) -> list[int]:
    """Record that the visitor has seen our chat replies up to ``up_to_id``; return the ids newly marked."""
    scope = scope_identity_ids(visitor)
    conversation = visible_conversation(visitor, scope)
    if conversation is None:
        return []
    rows = db.session.scalars(
        select(Message)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == "out",
            Message.id <= up_to_id,
            *_visible(scope),
        )
        .order_by(Message.id.desc())
        .limit(HISTORY_PAGE)
    ).all()
    now = iso(utcnow())
    marked = []
    for message in rows:
        if (message.meta or {}).get("read_at"):
            continue
        message.meta = {**(message.meta or {}), "read_at": now}
        marked.append(message.id)
        delivery_changed(message)
    db.session.commit()
    return marked


def mark_read_by_agent(conversation_id: int) -> tuple[int, str] | None:
    """Record that an agent has seen the visitor's chat messages; return (last id, when) if any were new."""
    rows = db.session.scalars(
        select(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.channel == "chat",
            Message.direction == "in",
            Message.kind == "message",
        )
        .order_by(Message.id.desc())
        .limit(HISTORY_PAGE)
    ).all()
    unread = [message for message in rows if not (message.meta or {}).get("read_at")]
    if not unread:
        db.session.rollback()
        return None
    now = iso(utcnow())
    assert now is not None
    for message in unread:
        message.meta = {**(message.meta or {}), "read_at": now}
    up_to = max(message.id for message in unread)
    publish(
        db.session,
        Event(
            MESSAGES_READ,
            {"conversation_id": conversation_id, "up_to": up_to, "at": now},
            conversation_id=conversation_id,
            all_agents=False,
        ),
    )
    db.session.commit()
    return up_to, now
