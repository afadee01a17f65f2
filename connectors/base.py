"""The contract between channels and the domain: identities, inbound and outbound messages, connectors.

Everything here is pure: no database, no Flask. A connector parses provider input into an
``InboundMessage`` and sends an ``OutboundMessage``; ``app.services`` does everything else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import phonenumbers
from email_validator import EmailNotValidError, validate_email

IdentityKind = Literal["email", "phone", "chat", "external"]
IDENTITY_KINDS: tuple[str, ...] = ("email", "phone", "chat", "external")
ChannelKind = Literal["email", "sms", "voice", "chat", "form", "api"]
CHANNEL_KINDS: tuple[str, ...] = ("email", "sms", "voice", "chat", "form", "api")
MessageKind = Literal["message", "call", "voicemail", "status"]

DEFAULT_PHONE_REGION = "US"


class InvalidIdentity(ValueError):
    """A value that cannot be a customer identity (bad email address, unparsable phone number, …)."""

    def __init__(self, kind: str, value: str, reason: str) -> None:
        super().__init__(f"invalid {kind} identity {value!r}: {reason}")
        self.kind = kind
        self.value = value
        self.reason = reason


def normalize_email(value: str) -> str:
    """Return the canonical form of an email address: IDNA domain, lower-cased; raise InvalidIdentity."""
    try:
        result = validate_email(value.strip(), check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise InvalidIdentity("email", value, str(exc)) from None
    local, _, _ = result.normalized.rpartition("@")
    return f"{local.lower()}@{result.ascii_domain.lower()}"


def normalize_phone(value: str, default_region: str | None = None) -> str:
    """Return a phone number in E.164 (+48601234567); raise InvalidIdentity when it is not a real number."""
    region = (default_region or DEFAULT_PHONE_REGION).upper()
    raw = value.strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentity("phone", value, str(exc)) from None
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise InvalidIdentity("phone", value, "not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_opaque(kind: str, value: str, max_length: int = 255) -> str:
    """Validate an opaque identifier (chat visitor id, external user id)."""
    cleaned = value.strip()
    if not cleaned:
        raise InvalidIdentity(kind, value, "must not be empty")
    if len(cleaned) > max_length:
        raise InvalidIdentity(kind, value, f"longer than {max_length} characters")
    if any(ord(ch) < 32 for ch in cleaned):
        raise InvalidIdentity(kind, value, "contains control characters")
    return cleaned


@dataclass(frozen=True, slots=True)
class Identity:
    """One way to reach a customer. Build it with ``Identity.parse`` so the value is canonical."""

    kind: str
    value: str

    @classmethod
    def parse(cls, kind: str, value: str, default_region: str | None = None) -> Identity:
        """Normalise ``value`` for ``kind`` and return the Identity; raise InvalidIdentity."""
        if kind == "email":
            return cls("email", normalize_email(value))
        if kind == "phone":
            return cls("phone", normalize_phone(value, default_region))
        if kind in ("chat", "external"):
            return cls(kind, normalize_opaque(kind, value))
        raise InvalidIdentity(kind, value, f"unknown identity kind; expected one of {', '.join(IDENTITY_KINDS)}")


@dataclass(slots=True)
class Attachment:
    """A file that came with a message; ``content_id`` is set for inline parts referenced by cid:."""

    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None
    inline: bool = False


@dataclass(slots=True)
class ThreadHints:
    """What the provider tells us about which conversation a message continues."""

    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    reply_token: str | None = None
    conversation_number: int | None = None


@dataclass(slots=True)
class InboundMessage:
    """A message from a customer, normalised by a connector, ready for ``app.services.ingest``."""

    channel: str
    sender: Identity
    recipient: str = ""
    sender_name: str | None = None
    subject: str | None = None
    text: str = ""
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    provider_id: str | None = None
    thread: ThreadHints = field(default_factory=ThreadHints)
    received_at: dt.datetime | None = None
    kind: MessageKind = "message"
    automated: bool = False
    raw: bytes | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class OutboundMessage:
    """An agent's (or the system's) message to a customer, handed to a connector by the outbox worker."""

    message_id: int
    channel: str
    channel_address: str
    recipient: Identity
    recipient_name: str | None
    text: str
    html: str | None = None
    subject: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    thread: ThreadHints = field(default_factory=ThreadHints)
    automated: bool = False
    settings: dict[str, Any] = field(default_factory=dict)


class SendError(Exception):
    """A send failed. ``retryable`` says whether the outbox should try again later."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class RetryableSendError(SendError):
    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class PermanentSendError(SendError):
    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@runtime_checkable
class Connector(Protocol):
    """What a channel must offer the outbox: a name and ``send`` returning the provider's id."""

    kind: ClassVar[str]

    def send(self, message: OutboundMessage) -> str: ...


ConnectorFactory = Callable[[dict[str, Any]], Connector]
_registry: dict[str, ConnectorFactory] = {}


def register(kind: str, factory: ConnectorFactory) -> None:
    """Register the factory that builds the connector for channel ``kind`` from app settings."""
    _registry[kind] = factory


def get_connector(kind: str, settings: dict[str, Any]) -> Connector:
    """Return the connector for ``kind``; raise PermanentSendError when no connector can send on it."""
    try:
        factory = _registry[kind]
    except KeyError:
        raise PermanentSendError(f"no connector can send on channel kind {kind!r}") from None
    return factory(settings)


def registered_kinds() -> list[str]:
    return sorted(_registry)
