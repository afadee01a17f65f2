"""Click-to-call: an agent calls the customer of a conversation; the call is logged like inbound calls."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from flask_login import current_user

from app.api.auth import role_required
from app.api.validation import Schema, documented, validate
from app.extensions import db
from app.models import Message
from app.serializers import call_dict, message_dict
from app.services.calls import start_click_to_call

bp = Blueprint("calls", __name__, url_prefix="/api/v1/conversations")


class CallBody(Schema):
    channel_id: int | None = None  # the voice channel whose number the customer sees; default: the usual one
    to_identity_id: int | None = None  # which of the customer's numbers; default: the one they last used


@bp.post("/<int:conversation_id>/calls")
@role_required("agent")
@validate(body=CallBody)
@documented(summary="Call the customer: Twilio rings your phone, then bridges you to the customer")
def create(conversation_id: int, body: CallBody) -> Any:
    """Start a click-to-call from this conversation."""
    call = start_click_to_call(
        conversation_id,
        current_user,
        settings=current_app.config,
        channel_id=body.channel_id,
        to_identity_id=body.to_identity_id,
    )
    message = db.session.get_one(Message, call.message_id)
    return jsonify(call=call_dict(call), message=message_dict(message, call=call)), 201
