"""Parse raw RFC 5322 mail into an InboundMessage: pure, no database, never crashes on real-world mail.

The standard library's email package does the MIME work, and its modern header parsers (``policy.default``)
back up our header decoding. Around it sit the fallbacks real mail needs: a repaired header block (mbox
lines and junk before the headers, obsolete ``Name :`` syntax, stray lines inside the header block),
headers decoded from their raw bytes (8-bit headers, RFC 2047 words in unknown charsets), bodies decoded
whatever their transfer encoding or charset claims, HTML sanitised, ``cid:`` images pointed at served
attachments, forwarded messages unpacked, quoted history folded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import mimetypes
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any
from urllib.parse import unquote

from connectors.base import Attachment, Identity, InboundMessage, InvalidIdentity, ThreadHints
from connectors.email.bounce import Bounce, parse_bounce
from connectors.email.charsets import clean_text, decode_bytes, decode_encoded_words, decode_surrogates
from connectors.email.loopguard import automated_reason
from connectors.email.mime import part_bytes, payload_bytes
from connectors.email.quotes import DEFAULT_LANGUAGES, fold_reply
from connectors.html import html_to_text, sanitize_html, text_to_html

log = logging.getLogger(__name__)

# The MIME tree is parsed with compat32, which keeps headers as raw strings: the modern policy builds a header
# object on every access and doubles the parsing time, while every header here is decoded from its raw value
# by the functions below anyway (the modern policy's lenient parsers are their fallback). Both policies pass
# the test suite.
PARSE_POLICY = policy.compat32
POLICY = policy.default
MAX_DEPTH = 12  # nested multiparts / forwarded messages
MAX_PARTS = 500
MAX_TEXT_CHARS = 2_000_000
MAX_REFERENCES = 50
_HEADER_LINE_RE = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_MSGID_RE = re.compile(r"<([^<>]+)>")
_COMMENT_RE = re.compile(r"\([^()]*\)")
_CONVERSATION_NUMBER_RE = re.compile(r"\[#(\d{1,12})\]")
_FROM_LINE_RE = re.compile(r"^from:(.*)$", re.IGNORECASE | re.MULTILINE)
_BARE_ID_RE = re.compile(r"[^\s<>()\"',;]+@[^\s<>()\"',;]+")


class UnusableMessage(ValueError):
    """Mail we cannot attribute to anyone (no usable sender address): rejected with this reason."""


@dataclass(slots=True)
class ParsedEmail:
    """What the server needs: the message for ingest, or the bounce report it is."""

    inbound: InboundMessage | None
    bounce: Bounce | None = None


class _ForwardedText(str):
    """Text of a forwarded message: shown in full, never folded as quoted history."""


@dataclass(slots=True)
class _Body:
    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    forwarded: list[dict[str, Any]] = field(default_factory=list)
    parts: int = 0


# ------------------------------------------------------------------------------------------- raw repair


def repair_header_block(raw: bytes) -> bytes:
    """Return ``raw`` with a header block the parser can read; the original bytes are stored untouched."""
    raw = raw.removeprefix(b"\xef\xbb\xbf").lstrip(b"\r\n")
    match = re.search(rb"\r?\n\r?\n", raw)
    head_end = match.start() if match else len(raw)
    if head_end > 1_000_000:
        return raw
    head, rest = raw[:head_end], raw[head_end:]
    lines = head.splitlines(keepends=True)
    # Leading junk (an mbox "From " line, a banner) until the first header line, within reason.
    skipped = 0
    while lines and not _HEADER_LINE_RE.match(lines[0]) and skipped < 10:
        lines.pop(0)
        skipped += 1
    if not lines or not _HEADER_LINE_RE.match(lines[0]):
        return raw  # no header block at all: leave it to the parser
    valid_after = [False] * (len(lines) + 1)
    for index in range(len(lines) - 1, -1, -1):
        valid_after[index] = valid_after[index + 1] or bool(_HEADER_LINE_RE.match(lines[index]))
    out: list[bytes] = []
    for index, line in enumerate(lines):
        header = _HEADER_LINE_RE.match(line)
        if header:
            # Obsolete syntax allows "Subject   : x"; the parser does not.
            out.append(header.group(1) + b":" + line[header.end() :])
        elif line[:1] in (b" ", b"\t"):
            out.append(line)
        elif valid_after[index + 1]:
            continue  # a stray line between headers: drop it
        else:
            # No header follows: the body started without the blank separator line.
            newline = b"\r\n" if line.endswith(b"\r\n") else b"\n"
            return b"".join(out) + newline + b"".join(lines[index:]) + rest
    return b"".join(out) + rest


# ------------------------------------------------------------------------------------------------ headers


def _raw_header(message: Message, name: str) -> str | None:
    for key, value in message.raw_items():
        if key.lower() == name:
            return str(value)
    return None


def _has_surrogates(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]*", " ", value).strip()


def decode_header_text(value: str, hint: str | None = None) -> str:
    """Decode a raw header value: 8-bit bytes, RFC 2047 encoded words in any (or an unknown) charset."""
    if _has_surrogates(value):
        value = decode_surrogates(value, hint)
    value = _unfold(value)
    if "=?" in value:
        value = decode_encoded_words(value)
        if "=?" in value:
            # Words our strict pattern skipped (spaces inside, stray "?"): the library is more lenient.
            with contextlib.suppress(Exception):
                value = str(POLICY.header_factory("subject", value))
        if _has_surrogates(value):
            value = decode_surrogates(value, hint)
    return clean_text(value)


def header_text(message: Message, name: str, hint: str | None = None) -> str | None:
    """Return the decoded text of the first ``name`` header, or None."""
    raw = _raw_header(message, name)
    return None if raw is None else decode_header_text(raw, hint)


def header_addresses(message: Message, name: str, hint: str | None = None) -> list[tuple[str, str]]:
    """Return (display name, address) pairs of an address header, decoded, best effort."""
    raw = _raw_header(message, name)
    if raw is None:
        return []
    value = _unfold(decode_surrogates(raw, hint) if _has_surrogates(raw) else raw)
    pairs: list[tuple[str, str]] = []
    try:
        # Display names stay encoded here and are decoded below with our charset fallbacks.
        for display, address in getaddresses([value]):
            if "@" in address:
                pairs.append((display, address))
    except Exception:  # the lenient parser below copes with what this one cannot
        pairs = []
    if not pairs:
        with contextlib.suppress(Exception):
            parsed = POLICY.header_factory(name, value)
            pairs = [
                (address.display_name or "", address.addr_spec)
                for address in getattr(parsed, "addresses", ())
                if address.addr_spec and "@" in address.addr_spec
            ]
    if not pairs:
        # Last resort: anything shaped like an address.
        pairs = [("", found) for found in _BARE_ID_RE.findall(value)]
    return [(decode_header_text(display, hint).strip().strip('"'), address.strip()) for display, address in pairs]


def normalize_msgid(value: str) -> str | None:
    """Return a Message-ID as ``<left@right>`` (comments and folding whitespace removed), or None."""
    value = _COMMENT_RE.sub("", value)
    found = _MSGID_RE.search(value)
    candidate = found.group(1) if found else value
    candidate = re.sub(r"\s+", "", candidate).strip("<>")
    if not candidate or len(candidate) > 900:
        return None
    return clean_text(f"<{candidate}>")


def header_msgids(message: Message, name: str) -> list[str]:
    """Return every Message-ID in a header (In-Reply-To, References), in order, without duplicates."""
    raw = _raw_header(message, name)
    if raw is None:
        return []
    raw = _COMMENT_RE.sub("", decode_surrogates(raw) if _has_surrogates(raw) else raw)
    found = _MSGID_RE.findall(raw) or _BARE_ID_RE.findall(raw)
    result: list[str] = []
    for item in found:
        msgid = normalize_msgid(f"<{item}>")
        if msgid and msgid not in result:
            result.append(msgid)
    return result


def header_date(message: Message) -> dt.datetime | None:
    raw = _raw_header(message, "date")
    if not raw:
        return None
    try:
        value = parsedate_to_datetime(_COMMENT_RE.sub("", _unfold(raw)))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def conversation_number(subject: str | None) -> int | None:
    """Return the conversation number tagged in a subject (``Re: Parcel [#1234]``), or None."""
    found = _CONVERSATION_NUMBER_RE.search(subject or "")
    return int(found.group(1)) if found else None


def _format_address(display: str, address: str) -> str:
    return f"{display} <{address}>" if display else address


# -------------------------------------------------------------------------------------------------- body


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def _param(part: Message, name: str, header: str = "content-type") -> str | None:
    raw = _raw_header(part, header)
    if raw is not None and _has_surrogates(raw):
        # Raw 8-bit parameters (a UTF-8 filename): the parser would turn them into U+FFFD; decode first.
        decoded = Message()
        decoded[header] = decode_surrogates(raw)
        part = decoded
    try:
        value = part.get_param(name, header=header)
    except Exception:
        return None
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231: (charset, language, the bytes as a Latin-1 string)
        charset, _, encoded = value
        return decode_bytes(str(encoded).encode("latin-1", errors="replace"), charset or None, detect=False)
    return str(value)


def body_charset(message: Message) -> str | None:
    """Return the charset of the first text part: the best guess for raw 8-bit headers."""
    for part in message.walk():
        if _content_type(part).startswith("text/"):
            charset = _param(part, "charset")
            if charset:
                return charset
    return None


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _text_of(part: Message) -> str:
    return decode_bytes(payload_bytes(part), _param(part, "charset"))


_EXTENSIONS = {"image/jpg": ".jpg", "image/pjpeg": ".jpg", "text/rfc822-headers": ".txt"}
_UNSAFE_FILENAME_RE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def safe_filename(name: str | None, content_type: str, index: int) -> str:
    """Return a filename safe to store and offer for download (no paths, no control characters)."""
    if name:
        name = decode_header_text(name) if ("=?" in name or _has_surrogates(name)) else clean_text(name)
        name = name.replace("\\", "/").rsplit("/", 1)[-1]
        name = _UNSAFE_FILENAME_RE.sub("_", name).strip(" .")
    if not name:
        extension = mimetypes.guess_extension(content_type) or _EXTENSIONS.get(content_type, ".bin")
        name = f"attachment-{index}{extension}"
    if len(name) > 200:
        stem, dot, extension = name.rpartition(".")
        name = (stem[: 190 - len(extension)] + dot + extension) if dot and len(extension) < 10 else name[:200]
    return name


_UNQUOTED_NAME_RE = re.compile(r"(?:^|;)\s*(?:file)?name\s*=\s*([^\";=]+?)\s*(?:;|$)", re.IGNORECASE)


def _filename(part: Message) -> str | None:
    name = _param(part, "filename", "content-disposition") or _param(part, "name")
    if name and " " not in name:
        # An unquoted name with spaces ("name=This is a test.txt") is cut at the first space by the parser.
        for header in ("content-disposition", "content-type"):
            raw = _raw_header(part, header)
            found = _UNQUOTED_NAME_RE.search(_unfold(raw)) if raw else None
            if found and found.group(1).startswith(name) and len(found.group(1)) > len(name):
                return found.group(1)
    return name


def _content_id(part: Message) -> str | None:
    raw = part.get("content-id")
    if raw is None:
        return None
    value = re.sub(r"\s+", "", str(raw)).strip("<>")
    return clean_text(value)[:250] or None


def _add_attachment(body: _Body, part: Message, data: bytes, content_type: str, name: str | None) -> None:
    content_id = _content_id(part)
    body.attachments.append(
        Attachment(
            filename=safe_filename(name, content_type, len(body.attachments) + 1),
            content_type=content_type,
            data=data,
            content_id=content_id,
            # Inline means "shown inside the HTML body"; set when the HTML refers to it (cid_url below).
            # A part only labelled inline, that nothing shows, must still be listed as an attachment.
            inline=False,
        )
    )


def _collect(part: Message, body: _Body, depth: int) -> None:
    body.parts += 1
    if body.parts > MAX_PARTS or depth > MAX_DEPTH:
        return
    content_type = _content_type(part)
    if content_type in ("message/rfc822", "message/global"):
        _collect_forwarded(part, body, depth)
        return
    if content_type.startswith("message/"):
        # Delivery status, disposition and feedback reports: kept as a readable file, not as body text.
        name = _filename(part) or content_type.split("/", 1)[1] + ".txt"
        _add_attachment(body, part, part_bytes(part), content_type, name)
        return
    if content_type.startswith("multipart/") and not part.is_multipart():
        children = _resplit(part)
        if children is None:
            text = _text_of(part)
            if text.strip():
                body.texts.append(text)
            return
    elif part.is_multipart():
        children = [child for child in part.get_payload() if isinstance(child, Message)]
    else:
        children = None
    if children is not None:
        if part.get_content_subtype() == "alternative":
            _collect_alternative(children, body, depth)
        else:
            for child in children:
                _collect(child, body, depth + 1)
        return
    disposition = _disposition(part)
    filename = _filename(part)
    if content_type in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        text = _text_of(part)
        (body.htmls if content_type == "text/html" else body.texts).append(text)
        return
    _add_attachment(body, part, payload_bytes(part), content_type, filename)


_BOUNDARY_RE = re.compile(r"boundary\s*=\s*(?:\"([^\"]+)\"|([^\s;]+))", re.IGNORECASE)


def _resplit(part: Message) -> list[Message] | None:
    """Split a multipart whose boundary the parser could not use (unquoted "=" in it, a wrong boundary)."""
    data = payload_bytes(part)
    raw = _raw_header(part, "content-type") or ""
    found = _BOUNDARY_RE.search(_unfold(raw))
    candidates = [(found.group(1) or found.group(2)).encode("ascii", "replace")] if found else []
    # Otherwise take the first delimiter-looking line of the body.
    guessed = re.search(rb"^--([^\r\n]{1,200}?)(?:--)?[ \t]*\r?$", data, re.MULTILINE)
    if guessed:
        candidates.append(guessed.group(1))
    for boundary in candidates:
        if b"--" + boundary not in data:
            continue
        header = b'Content-Type: multipart/mixed; boundary="' + boundary.replace(b'"', b"") + b'"\r\n\r\n'
        reparsed = BytesParser(policy=PARSE_POLICY).parsebytes(header + data)
        if reparsed.is_multipart():
            return [child for child in reparsed.get_payload() if isinstance(child, Message)]
    return None


def _collect_alternative(children: list[Message], body: _Body, depth: int) -> None:
    """Keep the plain text and the richest HTML among the alternatives, and every attachment they carry."""
    texts: list[str] = []
    htmls: list[str] = []
    for child in children:
        branch = _Body(parts=body.parts)
        _collect(child, branch, depth + 1)
        body.parts = branch.parts
        if branch.texts and not texts:
            texts = branch.texts
        if branch.htmls:
            htmls = branch.htmls  # later alternatives are the richer ones (RFC 2046 5.1.4)
        body.attachments.extend(branch.attachments)
        body.forwarded.extend(branch.forwarded)
    body.texts.extend(texts)
    body.htmls.extend(htmls)


def _collect_forwarded(part: Message, body: _Body, depth: int) -> None:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if not isinstance(inner, Message):
        _add_attachment(body, part, payload_bytes(part), "message/rfc822", _filename(part) or "forwarded.eml")
        return
    hint = body_charset(inner)
    subject = header_text(inner, "subject", hint) or ""
    senders = header_addresses(inner, "from", hint)
    summary = {
        "from": _format_address(*senders[0]) if senders else None,
        "subject": subject,
        "date": header_text(inner, "date", hint),
        "to": ", ".join(_format_address(*pair) for pair in header_addresses(inner, "to", hint)) or None,
    }
    body.forwarded.append(summary)
    try:
        original = inner.as_bytes(policy=PARSE_POLICY.clone(linesep="\r\n"))
    except Exception:  # a message too broken to serialise again is still shown as text
        original = b""
    if original:
        name = _filename(part) or f"{subject.strip() or 'forwarded message'}.eml"
        _add_attachment(body, part, original, "message/rfc822", name)
    branch = _Body(parts=body.parts)
    _collect(inner, branch, depth + 1)
    body.parts = branch.parts
    lines = ["---------- Forwarded message ----------"]
    lines += [
        f"{label}: {summary[key]}"
        for key, label in (("from", "From"), ("date", "Date"), ("subject", "Subject"), ("to", "To"))
        if summary[key]
    ]
    inner_text = "\n\n".join(branch.texts).strip() or html_to_text("".join(branch.htmls))
    body.texts.append(_ForwardedText("\n".join(lines) + "\n\n" + inner_text))
    if branch.htmls or body.htmls:
        header_html = text_to_html("\n".join(lines))
        inner_html = "".join(branch.htmls) or text_to_html(inner_text)
        body.htmls.append(f"<hr>{header_html}{inner_html}")
    body.attachments.extend(branch.attachments)
    body.forwarded.extend(branch.forwarded)


# ------------------------------------------------------------------------------------------------ parse


_FORWARD_SUBJECT_RE = re.compile(r"^\s*(?:fwd?|fw|tr|wg|i|rv|enc|pd)\s*:", re.IGNORECASE)
_INLINE_FORWARD_RE = re.compile(r"^[ >]*(?:-{3,}\s*forwarded message|begin forwarded message:)", re.I | re.M)


def _visible_text(texts: list[str], subject: str | None, languages: tuple[str, ...]) -> str | None:
    """Return the text without quoted history and signature, or None when nothing was folded.

    Forwarded messages are what the customer wants us to read: they are never folded.
    """
    parts: list[str] = []
    folded = False
    for text in texts:
        own = not isinstance(text, _ForwardedText)
        if own and not _FORWARD_SUBJECT_RE.match(subject or "") and not _INLINE_FORWARD_RE.search(text):
            result = fold_reply(text.replace("\r\n", "\n"), languages)
            folded = folded or result.folded
            parts.append(result.visible)
        else:
            parts.append(text.strip("\r\n"))
    return "\n\n".join(parts) if folded else None


def provider_id_for(raw: bytes, message_id: str | None) -> str:
    """Return the idempotency key of a mail: the same mail delivered twice (a retry) gets the same key.

    Message-ID alone is not enough (senders reuse them); the body is hashed with it, line endings
    normalised, so a retried delivery or a copy via another route still matches.
    """
    match = re.search(rb"\r?\n\r?\n", raw)
    content = raw[match.end() :] if match else raw
    if message_id is None:
        content = raw  # nothing identifies it but its bytes
    digest = hashlib.sha256()
    digest.update((message_id or "").encode("utf-8", errors="replace"))
    digest.update(b"\0")
    digest.update(content.replace(b"\r\n", b"\n").rstrip(b"\n"))
    return digest.hexdigest()


def parse_email(
    raw: bytes,
    *,
    recipient: str = "",
    envelope_sender: str | None = None,
    own_addresses: Iterable[str] = (),
    inline_url: Callable[[str], str] | None = None,
    block_remote_images: bool = False,
    reply_token: str | None = None,
    reply_languages: tuple[str, ...] = DEFAULT_LANGUAGES,
) -> ParsedEmail:
    """Parse ``raw`` into the InboundMessage ingest stores, or the bounce it is; raise UnusableMessage.

    ``inline_url`` maps an attachment's SHA-256 to the URL that serves it (for ``cid:`` images);
    ``reply_languages`` are the languages whose quote headers and signatures are folded. Mail this parser
    cannot cope with (a bug, not the mail's fault) is still stored, as its raw text, for an agent to read.
    """
    try:
        return _parse(
            raw,
            recipient=recipient,
            envelope_sender=envelope_sender,
            own_addresses=own_addresses,
            inline_url=inline_url,
            block_remote_images=block_remote_images,
            reply_token=reply_token,
            reply_languages=reply_languages,
        )
    except UnusableMessage:
        raise
    except Exception as exc:
        log.exception("could not parse a mail from %r; storing its raw text", envelope_sender)
        from_lines = " ".join(_FROM_LINE_RE.findall(decode_bytes(raw[:16384], detect=False)))
        candidates = [_identity(found) for found in _BARE_ID_RE.findall(from_lines)]
        sender = _identity(envelope_sender) or next((found for found in candidates if found), None)
        if sender is None:
            raise UnusableMessage("unreadable mail with no usable sender address") from exc
        return ParsedEmail(
            InboundMessage(
                channel="email",
                sender=sender,
                recipient=recipient,
                text=decode_bytes(raw)[:MAX_TEXT_CHARS],
                provider_id=provider_id_for(raw, None),
                thread=ThreadHints(reply_token=reply_token),
                raw=raw,
                metadata={"email": {"parse_error": f"{type(exc).__name__}: {exc}"[:500], "recipient": recipient}},
            )
        )


def _parse(
    raw: bytes,
    *,
    recipient: str,
    envelope_sender: str | None,
    own_addresses: Iterable[str],
    inline_url: Callable[[str], str] | None,
    block_remote_images: bool,
    reply_token: str | None,
    reply_languages: tuple[str, ...],
) -> ParsedEmail:
    message = BytesParser(policy=PARSE_POLICY).parsebytes(repair_header_block(raw))

    hint = body_charset(message)
    sender_name, sender_address, identity = _sender(message, hint)
    identity = identity or _identity(envelope_sender)
    subject = header_text(message, "subject", hint)
    automated = automated_reason(
        message,
        sender=identity.value if identity else sender_address,
        envelope_sender=envelope_sender,
        own_addresses=own_addresses,
        subject=subject,
    )

    bounce = parse_bounce(message, sender=sender_address or envelope_sender, envelope_sender=envelope_sender)
    if bounce is not None:
        return ParsedEmail(inbound=None, bounce=bounce)
    if identity is None:
        raise UnusableMessage("no usable sender address in From, Sender or the envelope")

    body = _Body()
    try:
        _collect(message, body, 0)
    except Exception:  # a MIME tree too broken to walk: keep what the raw body says
        log.warning("MIME walk failed; storing the raw body as text", exc_info=True)
        body = _Body(texts=[decode_bytes(raw.partition(b"\n\n")[2] or raw)])

    message_id = normalize_msgid(_raw_header(message, "message-id") or "")
    in_reply_to = next(iter(header_msgids(message, "in-reply-to")), None)
    references = header_msgids(message, "references")[-MAX_REFERENCES:]

    by_cid = {item.content_id: item for item in body.attachments if item.content_id}

    def cid_url(content_id: str) -> str | None:
        item = by_cid.get(unquote(content_id).strip("<>"))
        if item is None or inline_url is None:
            return None
        item.inline = True
        return inline_url(hashlib.sha256(item.data).hexdigest())

    meta: dict[str, Any] = {}
    html = None
    html_source = "".join(body.htmls)
    if html_source.strip():
        sanitized = sanitize_html(html_source, cid_url=cid_url, block_remote_images=block_remote_images)
        html = sanitized.html or None
        if sanitized.remote_images:
            meta["remote_images"] = sanitized.remote_images
        if sanitized.flattened:
            meta["html_flattened"] = True
    texts = [t for t in body.texts if t.strip()]
    if not texts and html_source.strip():
        texts = [html_to_text(html_source)]
    text = "\n\n".join(t.strip("\r\n") for t in texts).replace("\r\n", "\n")
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS]
        meta["text_truncated"] = True
    visible = _visible_text(texts, subject, reply_languages)
    if visible is not None and visible != text:
        meta["visible_text"] = visible

    date = header_date(message)
    meta.update(
        {
            "from": _format_address(sender_name, sender_address) if sender_address else None,
            "to": [_format_address(*pair) for pair in header_addresses(message, "to", hint)][:50],
            "cc": [_format_address(*pair) for pair in header_addresses(message, "cc", hint)][:50],
            "reply_to": [_format_address(*pair) for pair in header_addresses(message, "reply-to", hint)][:10],
            "date": date.isoformat() if date else header_text(message, "date", hint),
            "envelope_from": envelope_sender,
            "recipient": recipient,
        }
    )
    if automated:
        meta["automated_reason"] = automated
    if body.forwarded:
        meta["forwarded"] = body.forwarded[:20]
    defects = len(message.defects)
    if defects:
        meta["defects"] = defects

    inbound = InboundMessage(
        channel="email",
        sender=identity,
        recipient=recipient,
        sender_name=(sender_name or None) and sender_name[:255],
        subject=subject[:998] if subject else None,
        text=text,
        html=html,
        attachments=body.attachments,
        provider_id=provider_id_for(raw, message_id),
        thread=ThreadHints(
            message_id=message_id,
            in_reply_to=in_reply_to,
            references=references,
            reply_token=reply_token,
            conversation_number=conversation_number(subject),
        ),
        automated=automated is not None,
        raw=raw,
        metadata={"email": {key: value for key, value in meta.items() if value not in (None, [], "")}},
    )
    return ParsedEmail(inbound=inbound)


def _sender(message: Message, hint: str | None) -> tuple[str, str, Identity | None]:
    """Return the author's name, address and identity: From, else Sender, else any address in From."""
    candidates = header_addresses(message, "from", hint) + header_addresses(message, "sender", hint)
    raw_from = _raw_header(message, "from") or ""
    candidates += [("", found.strip("<>")) for found in _BARE_ID_RE.findall(raw_from)]
    for name, address in candidates:
        identity = _identity(address)
        if identity is not None:
            return name, address, identity
    name, address = candidates[0] if candidates else ("", "")
    return name, address, None


def _identity(address: str | None) -> Identity | None:
    if not address or not address.strip("<> "):
        return None
    try:
        return Identity.parse("email", address.strip("<> "))
    except InvalidIdentity:
        return None
