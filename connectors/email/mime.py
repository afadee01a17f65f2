"""Bytes out of MIME parts, whatever their Content-Transfer-Encoding says (or misspells)."""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from email.message import Message


def b64decode_lenient(data: bytes) -> bytes:
    """Decode base64 that may have junk, missing padding or a stray trailing character."""
    cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    cleaned = cleaned[: len(cleaned) - (len(cleaned) % 4 == 1)]
    try:
        return base64.b64decode(cleaned + b"=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        return data


_KNOWN_ENCODINGS = {"base64", "quoted-printable", "x-uuencode", "uuencode", "uue", "x-uue"}


def payload_bytes(part: Message) -> bytes:
    """Return a leaf part's decoded bytes whatever its Content-Transfer-Encoding says (or misspells).

    ``get_payload(decode=True)`` is the only way to the original 8-bit bytes (without it the email package
    decodes them with the declared charset and replaces what does not fit); for an encoding it does not
    recognise ("quoted printable", "base64;") it returns the bytes undecoded and we decode them here.
    """
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if not isinstance(data, bytes):
        return b""
    declared = str(part.get("content-transfer-encoding", "") or "").lower()
    if declared in _KNOWN_ENCODINGS:
        return data
    cte = declared.strip()
    try:
        if "base64" in cte:
            return b64decode_lenient(data)
        if "quoted" in cte:
            return quopri.decodestring(data)
    except Exception:  # undecodable: keep the bytes as sent
        return data
    return data


def part_bytes(part: Message) -> bytes:
    """Return a part's content; message/* parts the parser split into header blocks are joined back."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        return payload_bytes(part)
    blocks = []
    for block in payload:
        if isinstance(block, Message):
            lines = [f"{name}: {value}" for name, value in block.raw_items()]
            body = block.get_payload()
            if isinstance(body, str) and body.strip():
                lines += ["", body]
            blocks.append("\n".join(lines))
    return "\n\n".join(blocks).encode("utf-8", errors="surrogateescape")
