"""Build the MIME message for an agent's reply: threading headers, reply address, text + HTML, attachments."""

from __future__ import annotations

import re
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from connectors.base import OutboundMessage
from connectors.email.parse import conversation_number
from connectors.html import text_to_html

MAX_REFERENCES = 20
_REPLY_PREFIX_RE = re.compile(r"^\s*(?:re|aw|odp|sv|vs|antw|rif|r)\s*:", re.IGNORECASE)
_TOKEN_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")


def attachment_type(content_type: str | None) -> tuple[str, str]:
    """Return the (maintype, subtype) a file is attached as: bare, lower-case, and never a composite type.

    Composite types (multipart/*, message/*) may not be base64-encoded (RFC 2046), so such files go as
    application/octet-stream; so does anything malformed.
    """
    maintype, _, subtype = (content_type or "").split(";", 1)[0].strip().lower().partition("/")
    if not (_TOKEN_RE.match(maintype) and _TOKEN_RE.match(subtype)) or maintype in ("multipart", "message"):
        return "application", "octet-stream"
    return maintype, subtype


def plus_address(address: str, token: str | None) -> str:
    """Return ``local+token@domain`` (the address replies come back to), or ``address`` without a token."""
    if not token:
        return address
    local, _, domain = address.rpartition("@")
    return f"{local.split('+', 1)[0]}+{token}@{domain}"


def reply_subject(subject: str | None, number: int | None, *, is_reply: bool) -> str:
    """Return the subject of our mail: "Re: …" when it answers one, tagged ``[#number]`` for threading."""
    subject = re.sub(r"[\r\n\t]+", " ", subject or "").strip()
    if number is not None and conversation_number(subject) != number:
        subject = f"{subject} [#{number}]".strip()
    if is_reply and subject and not _REPLY_PREFIX_RE.match(subject):
        subject = f"Re: {subject}"
    return subject or (f"[#{number}]" if number is not None else "")


def _address(display: str | None, address: str) -> Address:
    local, _, domain = address.rpartition("@")
    name = re.sub(r"[\r\n\t]+", " ", display or "").strip()
    return Address(display_name=name, username=local, domain=domain)


def needs_smtputf8(message: OutboundMessage) -> bool:
    """Whether an address has a non-ASCII local part (only SMTPUTF8 can carry it)."""
    addresses = (message.recipient.value, message.channel_address)
    return any(not address.rpartition("@")[0].isascii() for address in addresses)


def build_message(message: OutboundMessage, *, domain: str, from_name: str | None = None) -> EmailMessage:
    """Return the MIME message for ``message``; its Message-ID is the one stored for threading."""
    mail = EmailMessage(policy=policy.SMTPUTF8 if needs_smtputf8(message) else policy.SMTP)
    thread = message.thread
    sender_name = from_name or message.settings.get("from_name") or message.settings.get("display_name")
    mail["From"] = _address(sender_name, message.channel_address)
    mail["To"] = _address(message.recipient_name, message.recipient.value)
    if thread.reply_token:
        mail["Reply-To"] = _address(sender_name, plus_address(message.channel_address, thread.reply_token))
    mail["Subject"] = reply_subject(message.subject, thread.conversation_number, is_reply=bool(thread.in_reply_to))
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = thread.message_id or make_msgid(domain=domain)
    references = [ref for ref in thread.references if ref]
    if thread.in_reply_to:
        mail["In-Reply-To"] = thread.in_reply_to
        if thread.in_reply_to not in references:
            references.append(thread.in_reply_to)
    if references:
        # The first (the thread's root) and the most recent ones, as RFC 5322 suggests when trimming.
        kept = references if len(references) <= MAX_REFERENCES else [references[0], *references[-MAX_REFERENCES + 1 :]]
        mail["References"] = " ".join(kept)
    if message.automated:
        # RFC 3834: tells other auto-responders not to answer this one.
        mail["Auto-Submitted"] = "auto-replied"
        mail["X-Auto-Response-Suppress"] = "All"
    mail.set_content(message.text)
    mail.add_alternative(message.html or text_to_html(message.text), subtype="html")
    for attachment in message.attachments:
        maintype, subtype = attachment_type(attachment.content_type)
        mail.add_attachment(
            attachment.data,
            maintype=maintype,
            subtype=subtype,
            filename=attachment.filename,
            disposition="inline" if attachment.inline else "attachment",
            cid=f"<{attachment.content_id}>" if attachment.content_id else None,
        )
    return mail
