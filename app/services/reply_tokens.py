"""Reply tokens: a short signed reference to a conversation, carried in reply addresses (support+TOKEN@…).

The token is derived from the conversation id and SECRET_KEY, so nothing is stored and nobody can guess the
token of another conversation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from flask import current_app


def _signature(conversation_id: int) -> str:
    key = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(key, f"reply-token:{conversation_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode().lower()


def make_reply_token(conversation_id: int) -> str:
    """Return the reply token of a conversation, e.g. ``c42-mfrggzdfmztwq2lk``."""
    return f"c{conversation_id}-{_signature(conversation_id)}"


def conversation_id_for_token(token: str) -> int | None:
    """Return the conversation id a genuine token refers to, else None."""
    prefix, _, signature = token.strip().lower().partition("-")
    if not prefix.startswith("c") or not prefix[1:].isdigit() or not signature:
        return None
    conversation_id = int(prefix[1:])
    if not hmac.compare_digest(signature, _signature(conversation_id)):
        return None
    return conversation_id
