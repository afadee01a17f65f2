"""Widget payload normalisation: pure functions from what a browser sent to what the domain accepts.

Nothing here trusts the browser: message text is cleaned and bounded, client message ids are checked against
a strict alphabet, origins are compared in canonical form, and an uploaded file's type is taken from its
first bytes rather than from what the client claims.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from connectors.base import Attachment, Identity, InboundMessage

# Client-generated message ids: a UUID or nanoid is fine; anything else is refused.
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# Control characters other than tab and newline never belong in a chat message.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
DEFAULT_PORTS = {"http": 80, "https": 443}


class InvalidPayload(ValueError):
    """A widget payload the server refuses; ``field`` names what was wrong."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


@dataclass(slots=True)
class ChatMessage:
    """A validated ``message`` event from the widget."""

    client_id: str
    text: str
    attachment_tokens: list[str] = field(default_factory=list)


def clean_text(value: Any, max_chars: int, *, field_name: str = "text") -> str:
    """Return ``value`` as plain text with normalised newlines, no control characters, trimmed; raise InvalidPayload."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidPayload(field_name, "must be a string")
    text = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text).strip()
    if len(text) > max_chars:
        raise InvalidPayload(field_name, f"longer than {max_chars} characters")
    return text


def clean_line(value: Any, max_chars: int, *, field_name: str) -> str:
    """Return a single-line field (a name, a subject) cleaned like ``clean_text`` with whitespace collapsed."""
    return " ".join(clean_text(value, max_chars * 4, field_name=field_name).split())[:max_chars]


def parse_message(payload: Any, *, max_chars: int, max_attachments: int = 5) -> ChatMessage:
    """Validate a widget ``message`` event: ``{client_id, text, attachments?: [upload token]}``."""
    if not isinstance(payload, dict):
        raise InvalidPayload("body", "must be an object")
    client_id = payload.get("client_id")
    if not isinstance(client_id, str) or not CLIENT_ID_RE.match(client_id):
        raise InvalidPayload("client_id", "must be 8-64 characters of A-Z, a-z, 0-9, '_' or '-'")
    text = clean_text(payload.get("text"), max_chars)
    tokens = payload.get("attachments") or []
    if not isinstance(tokens, list) or not all(isinstance(token, str) and len(token) < 2048 for token in tokens):
        raise InvalidPayload("attachments", "must be a list of upload tokens")
    if len(tokens) > max_attachments:
        raise InvalidPayload("attachments", f"at most {max_attachments} files per message")
    if not text and not tokens:
        raise InvalidPayload("text", "must not be empty")
    return ChatMessage(client_id=client_id, text=text, attachment_tokens=list(tokens))


def visitor_identity(channel_id: int, visitor_id: str) -> Identity:
    """Return the chat identity of one visitor on one widget channel (visitor ids are minted and signed by us)."""
    return Identity.parse("chat", f"{channel_id}:{visitor_id}")


def provider_id(visitor_id: str, client_id: str) -> str:
    """Return the idempotency key of a widget message.

    Scoped to the visitor: a client id alone is chosen by the browser, so another visitor could replay it and
    be "acknowledged" with someone else's message.
    """
    return f"{visitor_id}:{client_id}"


def build_inbound(
    *,
    channel_id: int,
    visitor_id: str,
    message: ChatMessage,
    sender_name: str | None,
    attachments: list[Attachment],
    metadata: dict[str, Any],
) -> InboundMessage:
    """Turn a validated widget message into the InboundMessage ingest stores."""
    return InboundMessage(
        channel="chat",
        sender=visitor_identity(channel_id, visitor_id),
        recipient=str(channel_id),
        sender_name=sender_name,
        text=message.text,
        attachments=attachments,
        provider_id=provider_id(visitor_id, message.client_id),
        # A signed visitor token proves who sent it: the chat identity itself is verified.
        metadata={**metadata, "client_id": message.client_id, "sender_verified": True},
    )


def canonical_origin(value: str | None) -> str | None:
    """Return ``scheme://host[:port]`` lower-cased with default ports dropped, or None when it is not an origin."""
    if not value or not isinstance(value, str) or value.strip() in ("null", "*"):
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def origin_allowed(origin: str | None, allowed: Any) -> bool:
    """Return whether ``origin`` is exactly one of ``allowed`` (a wildcard is never honoured)."""
    wanted = canonical_origin(origin)
    if wanted is None or not isinstance(allowed, list | tuple):
        return False
    return any(canonical_origin(item) == wanted for item in allowed if isinstance(item, str))


def user_hash(secret: str, user_id: str) -> str:
    """Return HMAC-SHA256(user id, secret) as lower-case hex: what the shop's server puts in the page."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify_user_hash(secret: str | None, user_id: str, given: str | None) -> bool:
    """Return whether ``given`` is the HMAC of ``user_id`` under the channel's secret (constant time)."""
    if not secret or not given or not isinstance(given, str):
        return False
    return hmac.compare_digest(user_hash(secret, user_id), given.strip().lower())


# Magic numbers of the file types a widget may accept; a type not listed here is taken as claimed.
_SIGNATURES: tuple[tuple[str, bytes, int], ...] = (
    ("image/png", b"\x89PNG\r\n\x1a\n", 0),
    ("image/jpeg", b"\xff\xd8\xff", 0),
    ("image/gif", b"GIF87a", 0),
    ("image/gif", b"GIF89a", 0),
    ("image/webp", b"WEBP", 8),
    ("application/pdf", b"%PDF-", 0),
)


def sniff_content_type(data: bytes, claimed: str | None) -> str:
    """Return the content type a file's bytes show; fall back to the claimed type only for unknown kinds.

    A PNG named ``.pdf`` is a PNG; bytes that claim to be an image but are not are ``application/octet-stream``.
    """
    for content_type, magic, offset in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic and (offset == 0 or data[:4] == b"RIFF"):
            return content_type
    claimed = (claimed or "").split(";")[0].strip().lower()
    if claimed == "text/plain" or (not claimed and data):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return "application/octet-stream"
        return "text/plain" if b"\x00" not in data else "application/octet-stream"
    if claimed.startswith("image/") or claimed == "application/pdf":
        return "application/octet-stream"  # it said image/PDF, but the bytes are not one
    return claimed or "application/octet-stream"


def safe_filename(name: str | None) -> str:
    """Return a display-safe file name (no paths, no control characters, bounded length)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _CONTROL.sub("", base).strip().strip(".") or "file"
    if len(base) > 120:
        stem, dot, ext = base.rpartition(".")
        base = (stem[:110] + dot + ext[:8]) if dot else base[:120]
    return base
