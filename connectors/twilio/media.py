"""The worker job that downloads inbound MMS media into attachments, never inside the webhook."""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Iterable
from typing import Any

from flask import current_app

from app.services import sms
from connectors.base import SendError
from connectors.twilio.rest import TwilioSettings, fetch_media

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 5 * 1024 * 1024  # Twilio's own MMS limit
DEFAULT_TYPES = (
    "image/*",
    "audio/*",
    "video/*",
    "application/pdf",
    "text/vcard",
    "text/x-vcard",
    "text/calendar",
    "text/plain",
)


def _types(value: Any) -> tuple[str, ...]:
    if not value:
        return DEFAULT_TYPES
    items: Iterable[str] = value.split(",") if isinstance(value, str) else value
    return tuple(item.strip().lower() for item in items if item.strip())


def filename_for(index: int, content_type: str) -> str:
    extension = mimetypes.guess_extension(content_type) or ".bin"
    return f"mms-{index + 1}{extension}"


def fetch_due_media(limit: int = 10) -> int:
    """Download the media of due MMS messages within the type and size limits; return how many messages."""
    config = current_app.config
    settings = TwilioSettings.from_config(config)
    max_bytes = int(config.get("TWILIO_MEDIA_MAX_BYTES") or DEFAULT_MAX_BYTES)
    allowed = _types(config.get("TWILIO_MEDIA_TYPES"))
    message_ids = sms.claim_pending_media(limit)
    for message_id in message_ids:
        results: dict[int, tuple[str, Any]] = {}
        for index, item in sms.pending_media(message_id):
            try:
                fetched = fetch_media(settings, item["url"], max_bytes=max_bytes, allowed_types=allowed)
            except SendError as exc:
                log.warning("message %s media %d: %s", message_id, index, exc)
                results[index] = ("retry" if exc.retryable else "failed", str(exc))
            else:
                name = filename_for(index, fetched.content_type)
                results[index] = ("stored", (name, fetched.content_type, fetched.data))
        sms.finish_media(message_id, results)
    return len(message_ids)
