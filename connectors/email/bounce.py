"""Bounces: recognise delivery reports and extract which message failed, for whom, and why.

RFC 3464 DSNs (multipart/report; report-type=delivery-status) carry machine-readable fields and the
original message or its headers. Many servers (qmail, older Exim, Gmail, GMX …) send plain-text
reports instead; for those a null or mailer-daemon sender plus a bounce-like subject or an
X-Failed-Recipients header is the signal, and the original Message-ID is found in the quoted copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message

from connectors.email.charsets import decode_bytes
from connectors.email.loopguard import is_machine_address
from connectors.email.mime import part_bytes

_SUBJECT_RE = re.compile(
    r"undeliver|undelivered|delivery status notification|delivery (?:has )?fail|failure notice|returned mail"
    r"|mail delivery failed|delivery report|non remis|non recapitabile|unzustellbar|niedostarcz|недостав"
    r"|could not send message|delivery failure|mail system error|bounce notification|nondeliverable",
    re.IGNORECASE,
)
_DELAY_RE = re.compile(r"\bdelay|could not send message for past|will (?:continue|keep) (?:to )?tr|warning", re.I)
_FIELD_RE = {
    "action": re.compile(r"^Action:[ \t]*([A-Za-z-]+)", re.I | re.M),
    "status": re.compile(r"^Status:[ \t]*([245]\.\d{1,3}\.\d{1,3})", re.I | re.M),
    "diagnostic": re.compile(r"^Diagnostic-Code:[ \t]*(.+(?:\r?\n[ \t]+.+)*)", re.I | re.M),
    "recipient": re.compile(r"^(?:Final|Original)-Recipient:[ \t]*(?:rfc822;)?[ \t]*(.+)", re.I | re.M),
}
_MESSAGE_ID_LINE_RE = re.compile(r"^[ \t>]*Message-ID:[ \t]*(<[^<>\s]+>)", re.I | re.M)
_SMTP_REPLY_RE = re.compile(r"(?:^|\s)([45]\d\d[ -][^\n]{3,}|#?[45]\.\d{1,3}\.\d{1,3}[^\n]*)")


@dataclass(slots=True)
class Bounce:
    """A delivery report: ``action`` is failed | delayed | delivered | relayed | expanded."""

    action: str
    reason: str
    status: str | None = None
    recipients: list[str] = field(default_factory=list)
    # Message-IDs of the original message (to find the outbound message that bounced).
    message_ids: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.action == "failed"


def _text(part: Message) -> str:
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    try:
        return decode_bytes(part_bytes(part), charset)
    except Exception:
        return ""


def _is_dsn(message: Message) -> bool:
    try:
        return (
            message.get_content_type() == "multipart/report"
            and str(message.get_param("report-type") or "").lower() == "delivery-status"
        )
    except Exception:
        return False


def looks_like_bounce(message: Message, *, sender: str | None, envelope_sender: str | None) -> bool:
    """Whether ``message`` is a delivery report (a DSN, or a plain-text bounce from a mail system)."""
    if _is_dsn(message):
        return True
    null_sender = envelope_sender is not None and envelope_sender.strip("<> ") == ""
    if not (null_sender or is_machine_address(sender)):
        return False
    if message.get("x-failed-recipients") is not None:
        return True
    subject = str(message.get("subject", "") or "")
    return bool(_SUBJECT_RE.search(subject))


def parse_bounce(message: Message, *, sender: str | None, envelope_sender: str | None) -> Bounce | None:
    """Return the Bounce ``message`` is, or None when it is not a delivery report."""
    try:
        if not looks_like_bounce(message, sender=sender, envelope_sender=envelope_sender):
            return None
    except Exception:  # undecidable: treat it as ordinary mail
        return None
    status_text = ""
    human_text = ""
    original_text = ""
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/delivery-status":
            status_text += _text(part) + "\n"
        elif content_type in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            original_text += _text(part) + "\n"
        elif content_type == "text/plain" and not part.is_multipart() and not human_text:
            human_text = _text(part)
    whole = human_text + "\n" + original_text
    fields = {name: pattern.findall(status_text) for name, pattern in _FIELD_RE.items()}

    actions = [action.lower() for action in fields["action"]]
    if actions:
        action = "failed" if "failed" in actions else actions[0]
    else:
        subject = str(message.get("subject", "") or "")
        action = "delayed" if _DELAY_RE.search(subject) or _DELAY_RE.search(human_text[:2000]) else "failed"
    if action not in ("failed", "delayed", "delivered", "relayed", "expanded"):
        action = "failed"
    status = fields["status"][0] if fields["status"] else None
    recipients = [value.strip().strip("<>").lower() for value in fields["recipient"]]
    failed_header = message.get("x-failed-recipients")
    if failed_header and not recipients:
        recipients = [item.strip().lower() for item in str(failed_header).split(",") if item.strip()]
    recipients = list(dict.fromkeys(recipients))[:20]

    return Bounce(
        action=action,
        reason=_reason(fields["diagnostic"], status, human_text, recipients, message),
        status=status,
        recipients=recipients,
        message_ids=_original_message_ids(message, original_text or whole),
    )


def _reason(diagnostics: list[str], status: str | None, human: str, recipients: list[str], message: Message) -> str:
    """A one-line explanation for the agent: the remote server's own words when we have them."""
    detail = ""
    if diagnostics:
        detail = re.sub(r"\s+", " ", diagnostics[0]).strip()
        detail = re.sub(r"^(?:smtp|x-[a-z-]+);\s*", "", detail, flags=re.I)
    if not detail:
        found = _SMTP_REPLY_RE.search(human)
        if found:
            detail = re.sub(r"\s+", " ", found.group(1)).strip()
    if not detail:
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", human) if p.strip() and not p.strip().startswith("#")]
        detail = re.sub(r"\s+", " ", paragraphs[0]) if paragraphs else str(message.get("subject", "") or "")
    if "\x1b$" in detail:  # ISO-2022-JP escapes in an unlabelled report (Lotus Domino)
        detail = detail.encode("ascii", errors="ignore").decode("iso2022_jp", errors="replace")
    if status and status not in detail:
        detail = f"{detail} (status {status})"
    who = ", ".join(recipients[:3])
    reason = f"{who}: {detail}" if who else detail
    return reason[:500] or "delivery failed"


def _original_message_ids(message: Message, text: str) -> list[str]:
    ids: list[str] = []
    own = str(message.get("message-id", "") or "").strip()
    for found in _MESSAGE_ID_LINE_RE.findall(text):
        if found != own and found not in ids:
            ids.append(found)
    for name in ("in-reply-to", "references"):
        for found in re.findall(r"<[^<>\s]+>", str(message.get(name, "") or "")):
            if found not in ids:
                ids.append(found)
    return ids[:20]
