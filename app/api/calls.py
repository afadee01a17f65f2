"""Phone calls: click-to-call from a conversation, and the queue of callers waiting for an agent."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from flask_login import current_user

from app.api.auth import role_required
from app.api.errors import ApiError
from app.api.validation import Schema, documented, validate
from app.extensions import db
from app.models import Message, utcnow
from app.serializers import call_dict, iso, message_dict
from app.services.calls import QueueAnswerFailed, answer_queue, queue_entries, start_click_to_call

bp = Blueprint("calls", __name__, url_prefix="/api/v1")


class CallBody(Schema):
    channel_id: int | None = None  # the voice channel whose number the customer sees; default: the usual one
    to_identity_id: int | None = None  # which of the customer's numbers; default: the one they last used


class AnswerBody(Schema):
    # A caller from GET /calls/queue; default: the longest waiting caller nobody is answering yet.
    call_id: int | None = None


@bp.post("/conversations/<int:conversation_id>/calls")
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


@bp.get("/calls/queue")
@role_required("agent")
@documented(summary="Callers waiting in the phone queue, longest waiting first")
def queue() -> Any:
    """List the waiting callers: customer, number, wait time, position, and who is answering them."""
    now = utcnow()
    items = queue_entries(now)
    return jsonify(items=items, count=len(items), now=iso(now))


@bp.post("/calls/queue/answer")
@role_required("agent")
@validate(body=AnswerBody)
@documented(summary="Answer the next queued caller: Twilio rings your phone, then connects you to them")
def answer(body: AnswerBody) -> Any:
    """Ring the agent's phone or Twilio Client; when they pick up, Twilio bridges the waiting caller.

    409 when nobody is waiting (or every caller is already being answered), 404 for an unknown call, 422 when
    your profile has no phone number or Twilio Client identity, 502 when Twilio refuses the call.
    """
    try:
        result = answer_queue(current_user, settings=current_app.config, call_id=body.call_id)
    except QueueAnswerFailed as exc:
        raise ApiError(502, exc.code, str(exc)) from None
    return (
        jsonify(
            call=call_dict(result.call),
            entry=result.entry,
            agent_call_sid=result.agent_call_sid,
            ringing=result.agent_endpoint,
        ),
        202,
    )
