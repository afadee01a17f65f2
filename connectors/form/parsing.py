"""Web contact form: validate a submission and turn it into an InboundMessage (pure, no Flask, no database)."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import Identity, InboundMessage, InvalidIdentity
from connectors.chat.payload import InvalidPayload, clean_line, clean_text

DEFAULT_HONEYPOT = "website"
FIELDS = ("name", "email", "subject", "message")


class InvalidSubmission(ValueError):
    """A submission with missing or bad fields; ``fields`` maps each to its reason."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("the form has invalid fields: " + ", ".join(sorted(fields)))
        self.fields = fields


@dataclass(frozen=True, slots=True)
class FormSubmission:
    name: str
    email: Identity
    subject: str
    message: str


def is_spam(data: Mapping[str, Any], honeypot: str = DEFAULT_HONEYPOT) -> bool:
    """Return whether the hidden honeypot field was filled in (people never see it; bots fill every field)."""
    value = data.get(honeypot)
    return bool(value and str(value).strip())


def parse_submission(data: Mapping[str, Any], *, max_chars: int = 20000) -> FormSubmission:
    """Validate name, email, subject and message; raise InvalidSubmission naming every bad field."""
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    for name, limit, single_line in (("name", 255, True), ("subject", 250, True), ("message", max_chars, False)):
        try:
            cleaner = clean_line if single_line else clean_text
            values[name] = cleaner(data.get(name), limit, field_name=name)
        except InvalidPayload as exc:
            errors[name] = exc.reason
    if "message" not in errors and not values.get("message"):
        errors["message"] = "must not be empty"
    email: Identity | None = None
    raw_email = data.get("email")
    if not isinstance(raw_email, str) or not raw_email.strip():
        errors["email"] = "required"
    else:
        try:
            email = Identity.parse("email", raw_email[:320])
        except InvalidIdentity as exc:
            errors["email"] = exc.reason
    if errors or email is None:
        raise InvalidSubmission(errors)
    return FormSubmission(
        name=values.get("name", ""), email=email, subject=values.get("subject", ""), message=values["message"]
    )


def submission_id(channel_id: int, submission: FormSubmission, now: dt.datetime) -> str:
    """Return the idempotency key: the same submission posted twice within the hour is stored once."""
    digest = hashlib.sha256(
        "\x1f".join(
            (str(channel_id), submission.email.value, submission.subject, submission.message, now.strftime("%Y%m%d%H"))
        ).encode()
    ).hexdigest()
    return f"form-{digest[:40]}"


def to_inbound(
    channel_id: int, submission: FormSubmission, now: dt.datetime, metadata: dict[str, Any] | None = None
) -> InboundMessage:
    """Return the InboundMessage for a submission; the email address is the sender's claim, not proven."""
    return InboundMessage(
        channel="form",
        sender=submission.email,
        recipient=str(channel_id),
        sender_name=submission.name or None,
        subject=submission.subject or None,
        text=submission.message,
        provider_id=submission_id(channel_id, submission, now),
        received_at=now,
        metadata={**(metadata or {}), "sender_verified": False},
    )


def snippet(action_url: str, *, honeypot: str = DEFAULT_HONEYPOT) -> str:
    """Return a copyable HTML form that posts to ``action_url`` (labels in English; restyle freely)."""
    action = html.escape(action_url, quote=True)
    trap = html.escape(honeypot, quote=True)
    return f"""<form action="{action}" method="post" accept-charset="utf-8">
  <label>Name <input name="name" autocomplete="name" maxlength="255"></label>
  <label>Email <input name="email" type="email" autocomplete="email" required maxlength="320"></label>
  <label>Subject <input name="subject" maxlength="250"></label>
  <label>Message <textarea name="message" required rows="6"></textarea></label>
  <!-- Leave this hidden field empty: bots fill it in, people never see it. -->
  <div style="position:absolute;left:-10000px" aria-hidden="true">
    <label>Leave empty <input name="{trap}" tabindex="-1" autocomplete="off"></label>
  </div>
  <button type="submit">Send</button>
</form>"""
