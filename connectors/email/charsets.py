"""Turn the bytes real mail carries into text: declared, mislabelled, unknown and broken charsets.

Decoding never raises. Mail says ``charset=iso-8859-1`` and sends UTF-8, says ``us-ascii`` and sends
Windows-1250, says ``X-UNKNOWN`` or nothing at all; we try what the bytes most likely are and fall back to a
detector, then to replacement characters.
"""

from __future__ import annotations

import codecs
import quopri
import re

import charset_normalizer

from connectors.email.mime import b64decode_lenient

# Labels mail clients use that Python does not know, or knows as a narrower charset than what is sent.
# The WHATWG encoding standard treats latin-1 and ascii labels as windows-1252 for the same reason.
_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "x-sjis": "cp932",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "windows-31j": "cp932",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso_8859-1": "cp1252",
    "iso-8859-9": "cp1254",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}
# Labels that name no charset at all.
_UNKNOWN = {"", "x-unknown", "unknown", "unknown-8bit", "x-user-defined", "none", "default", "charset"}
# Single-byte charsets decode any byte string, so a strict decode proves nothing; valid UTF-8 (which is
# almost never produced by chance) is the better guess when the bytes are not ASCII.
_SINGLE_BYTE_PREFIXES = ("ascii", "us-ascii", "iso-8859", "iso8859", "latin", "windows-125", "cp125", "koi8", "mac")
# Detection is the slow path; a sample is enough to recognise a charset.
_DETECT_SAMPLE_BYTES = 64 * 1024


def codec_for(label: str | None) -> str | None:
    """Return a Python codec name for a MIME charset label, or None when it names nothing usable."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    if name in _UNKNOWN:
        return None
    name = _ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _is_single_byte(label: str | None, codec: str | None) -> bool:
    probe = (label or "").strip().lower()
    return codec in ("cp1252", "ascii") or probe.startswith(_SINGLE_BYTE_PREFIXES)


def decode_bytes(data: bytes, charset: str | None = None, *, detect: bool = True) -> str:
    """Decode ``data`` labelled with ``charset`` as well as possible; never raise.

    ``detect`` runs a charset detector when nothing else fits; it needs a body's worth of text to guess
    well, so short header values fall back to Windows-1252, the most common legacy charset in mail.
    """
    if not data:
        return ""
    codec = codec_for(charset)
    if data.isascii():
        # 7-bit stateful charsets (ISO-2022-JP, UTF-7) are ASCII on the wire and must use the label.
        if codec and codec not in ("ascii", "utf-8", "cp1252"):
            try:
                return clean_text(data.decode(codec))
            except (UnicodeDecodeError, LookupError):
                pass
        return clean_text(data.decode("ascii"))
    attempts: list[str] = []
    if codec is None or _is_single_byte(charset, codec):
        attempts.append("utf-8")
    if codec:
        attempts.append(codec)
    for name in attempts:
        try:
            return clean_text(data.decode(name))
        except (UnicodeDecodeError, LookupError):
            continue
    guess = charset_normalizer.from_bytes(data[:_DETECT_SAMPLE_BYTES]).best() if detect else None
    if guess is not None:
        try:
            return clean_text(data.decode(guess.encoding, errors="replace"))
        except LookupError:
            pass
    # ASCII "decodes" 8-bit text into nothing but replacement characters; Windows-1252 keeps it legible.
    fallback = codec if codec and codec != "ascii" else "cp1252"
    return clean_text(data.decode(fallback, errors="replace"))


def clean_text(value: str) -> str:
    """Drop what no database column can hold: NUL characters and lone surrogates."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", errors="replace").decode("utf-8")
    return value


def decode_surrogates(value: str, hint: str | None = None) -> str:
    """Decode a header the email package kept as surrogate-escaped 8-bit bytes (raw UTF-8, Latin-1 …).

    ``hint`` is the message's body charset: clients that write raw 8-bit headers use the same one.
    """
    try:
        raw = value.encode("ascii", errors="surrogateescape")
    except UnicodeEncodeError:
        return clean_text(value)
    return decode_bytes(raw, hint, detect=False)


_ENCODED_WORD_RE = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=")


def decode_encoded_words(value: str) -> str:
    """Decode RFC 2047 encoded words with our charset fallbacks (aliases, unknown labels, lying labels).

    Adjacent words in one charset are joined before decoding, because senders split multi-byte characters
    across words.
    """
    out: list[str] = []
    pending: list[tuple[str, bytearray]] = []

    def flush() -> None:
        for charset, data in pending:
            out.append(decode_bytes(bytes(data), charset, detect=False))
        pending.clear()

    position = 0
    for match in _ENCODED_WORD_RE.finditer(value):
        between = value[position : match.start()]
        if not (pending and not between.strip()):
            flush()
            out.append(between)
        charset = match.group(1).split("*", 1)[0].lower()  # drop an RFC 2231 language suffix
        payload = match.group(3).encode("ascii", errors="replace")
        data = b64decode_lenient(payload) if match.group(2) in "Bb" else quopri.decodestring(payload, header=True)
        if pending and pending[-1][0] == charset:
            pending[-1][1].extend(data)
        else:
            pending.append((charset, bytearray(data)))
        position = match.end()
    flush()
    out.append(value[position:])
    return "".join(out)
