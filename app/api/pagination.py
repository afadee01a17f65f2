"""Opaque keyset cursors: the API hands out the sort key of a page's last row, encoded, and takes it back."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any

from app.api.errors import ApiError
from app.api.fields import MAX_ID, to_utc

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def encode_cursor(*key: Any) -> str:
    """Encode a sort key (datetimes and ints) as an opaque URL-safe token."""
    values = [value.isoformat() if isinstance(value, dt.datetime) else value for value in key]
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str | None, *types: type) -> tuple[Any, ...] | None:
    """Decode a token made by ``encode_cursor`` whose parts have ``types``; raise 400 on anything else."""
    if not token:
        return None
    bad = ApiError(400, "bad_cursor", "The cursor is not one this API handed out.", {"cursor": "invalid cursor"})
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(values, list) or len(values) != len(types):
        raise bad
    key: list[Any] = []
    for value, kind in zip(values, types, strict=True):
        if kind is dt.datetime:
            if not isinstance(value, str):
                raise bad
            try:
                key.append(to_utc(dt.datetime.fromisoformat(value)))
            except ValueError:
                raise bad from None
        elif kind is int:
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ID:
                raise bad
            key.append(value)
        else:
            raise TypeError(f"unsupported cursor part {kind!r}")
    return tuple(key)


def page(items: list[dict[str, Any]], next_key: tuple[Any, ...] | None) -> dict[str, Any]:
    """The shape of every paginated answer: ``{items, next_cursor}``."""
    return {"items": items, "next_cursor": encode_cursor(*next_key) if next_key is not None else None}
