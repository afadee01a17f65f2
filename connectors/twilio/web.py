"""The /webhooks/twilio/* endpoints: SMS in, delivery receipts, and the voice call flow.

Each request is authenticated by its X-Twilio-Signature, computed over PUBLIC_URL + path + query and every
form field: a missing or wrong signature gets 403 before anything is parsed or stored. Handlers stay thin:
parse with the pure modules, change state through ``app.services``, answer TwiML. A 2xx goes out only after
the services committed, so a crash makes Twilio retry, and the sids make retries harmless.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, request
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from app.extensions import db
from app.models import Call, Channel, utcnow
from app.services import calls, hours, sms
from app.services.channels import find_channel
from app.services.errors import BadRequest, Forbidden, NotFound
from app.services.ingest import ingest
from connectors.base import InvalidIdentity, normalize_phone
from connectors.twilio import twiml
from connectors.twilio.parsing import (
    TERMINAL_CALL_STATUSES,
    CallEvent,
    TwilioPayloadError,
    call_to_inbound,
    parse_call,
    parse_sms,
    parse_sms_status,
)
from connectors.twilio.signature import SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER, public_url, validate_signature

log = logging.getLogger(__name__)

bp = Blueprint("twilio_webhooks", __name__, url_prefix=twiml.WEBHOOK_PREFIX)

F = TypeVar("F", bound=Callable[..., Any])


def signed_url() -> str:
    """The URL Twilio requested, as configured there (PUBLIC_URL, not what a proxy forwarded)."""
    return public_url(current_app.config["PUBLIC_URL"], request.path, request.query_string)


def twilio_webhook(view: F) -> F:
    """Refuse (403) any request whose X-Twilio-Signature does not match; pass the form as ``params``."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = current_app.config.get("TWILIO_AUTH_TOKEN") or ""
        if not token:
            log.warning("Twilio webhook refused: TWILIO_AUTH_TOKEN is not set, so no signature can be checked")
        valid = validate_signature(
            token,
            signed_url(),
            request.form,
            request.headers.get(SIGNATURE_HEADER),
            request.headers.get(SIGNATURE_SETTINGS_HEADER),
        )
        if not valid:
            raise Forbidden("Missing or invalid X-Twilio-Signature.", code="invalid_signature")
        return view(request.form, *args, **kwargs)

    # Public on purpose (no login): the signature authenticates the request. The same mark as app.api.auth.public.
    wrapper.is_public = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _xml(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="application/xml")


def _region() -> str:
    return str(current_app.config.get("DEFAULT_PHONE_REGION") or "US")


def _urls() -> twiml.WebhookUrls:
    return twiml.WebhookUrls(current_app.config["PUBLIC_URL"])


def _number(value: str) -> str:
    try:
        return normalize_phone(value, _region())
    except InvalidIdentity:
        return value


def _settings_for_call(sid: str) -> twiml.VoiceSettings:
    """The voice settings of the channel a call came in on (defaults when unknown)."""
    call = db.session.scalar(select(Call).where(Call.provider_sid == sid))
    channel = db.session.get(Channel, (call.meta or {}).get("channel_id")) if call is not None else None
    settings = twiml.VoiceSettings.from_settings(channel.settings if channel is not None else None)
    db.session.rollback()  # end the read transaction (SQLite holds its write lock for the whole transaction)
    return settings


def _parse_call(params: MultiDict) -> CallEvent:
    try:
        return parse_call(params)
    except TwilioPayloadError as exc:
        raise BadRequest(str(exc)) from None


def _at(event: CallEvent) -> Any:
    return event.timestamp or utcnow()


# ------------------------------------------------------------------------------------------------- SMS


@bp.post("/sms")
@twilio_webhook
def incoming_sms(params: MultiDict) -> Response:
    """Store an incoming SMS/MMS on the sender's timeline; apply STOP/START; queue MMS media for the worker."""
    try:
        inbound = parse_sms(params, _region())
    except TwilioPayloadError as exc:
        raise BadRequest(str(exc)) from None
    channel = find_channel("sms", inbound.recipient)
    if channel is None:
        raise NotFound(f"No enabled SMS channel for {inbound.recipient}.", code="no_channel")
    result = ingest(inbound, channel)
    # Both steps below are idempotent, so a Twilio retry after a crash between commits completes them.
    keyword = inbound.metadata.get("opt_keyword")
    if keyword:
        sms.apply_opt_keyword(inbound.sender, keyword, channel_address=channel.address)
    if inbound.metadata.get("media"):
        sms.schedule_media_fetch(result.message.id)
    return _xml(twiml.empty_messaging())


@bp.post("/sms/status")
@twilio_webhook
def sms_status(params: MultiDict) -> Response:
    """Move an outbound SMS's delivery status forward (queued → sent → delivered | undelivered | failed)."""
    try:
        status = parse_sms_status(params)
    except TwilioPayloadError as exc:
        raise BadRequest(str(exc)) from None
    message = sms.record_delivery_status(
        status.message_sid,
        status.delivery_status,
        provider_status=status.twilio_status,
        error_code=status.error_code,
        error=status.error,
        message_id=request.args.get("m", type=int),
    )
    if message is None:
        log.info("delivery receipt for unknown message %s (%s)", status.message_sid, status.twilio_status)
    return _xml(twiml.empty_messaging())


# ----------------------------------------------------------------------------------------------- voice


@bp.post("/voice")
@twilio_webhook
def incoming_call(params: MultiDict) -> Response:
    """Answer a call: put it on the caller's timeline, then greet and ring agents, queue, or take a voicemail."""
    event = _parse_call(params)
    channel = find_channel("voice", _number(event.to_number))
    if channel is None:
        log.warning("call %s to %s: no voice channel configured", event.call_sid, event.to_number)
        return _xml(twiml.not_in_service())
    call = calls.record_inbound_call(call_to_inbound(event, _region()), channel)
    settings = twiml.VoiceSettings.from_settings(channel.settings)
    if calls.is_terminal(call):  # a late retry of a call that is over
        return _xml(twiml.hangup())
    try:
        open_now = hours.is_open(channel.business_hours, utcnow())
    except hours.InvalidSchedule as exc:
        log.warning("channel %s has invalid business hours (%s); treating it as open", channel.id, exc)
        open_now = True
    agents = []
    if open_now:
        for user in calls.available_agents(channel):
            phone = _number(user.phone) if user.phone else None
            agents.append(twiml.AgentEndpoint(user.id, phone, user.client_identity))
    db.session.rollback()
    return _xml(twiml.incoming_call(settings, _urls(), open_now=open_now, agents=agents))


@bp.post("/voice/agent-status")
@twilio_webhook
def agent_status(params: MultiDict) -> Response:
    """An agent's leg of an inbound call was answered or ended (``agent`` is in our signed URL)."""
    event = _parse_call(params)
    agent_id = request.args.get("agent", type=int)
    parent = event.parent_call_sid
    if parent:
        if event.call_status == "in-progress":
            calls.call_answered(parent, agent_id, _at(event))
        elif event.call_status in TERMINAL_CALL_STATUSES:
            calls.agent_leg_ended(parent, agent_id, event.duration, _at(event))
    return _xml(twiml.empty_voice())


@bp.post("/voice/dial")
@twilio_webhook
def dial_action(params: MultiDict) -> Response:
    """The ring to the agents ended: finished if someone talked, else queue or voicemail."""
    event = _parse_call(params)
    calls.dial_ended(event.call_sid, event.dial_call_status, event.dial_call_duration, _at(event))
    if event.call_status in TERMINAL_CALL_STATUSES:  # the caller hung up while it rang
        calls.call_ended(event.call_sid, event.call_status, event.duration, _at(event))
        return _xml(twiml.hangup())
    settings = _settings_for_call(event.call_sid)
    return _xml(twiml.after_dial(settings, _urls(), event.dial_call_status))


@bp.post("/voice/queue-wait")
@twilio_webhook
def queue_wait(params: MultiDict) -> Response:
    """Hold a queued caller, until the queue timeout sends them to voicemail; agents see them waiting."""
    event = _parse_call(params)
    settings = _settings_for_call(event.call_sid)
    if (event.queue_time or 0) >= settings.queue_timeout:
        calls.queue_left(event.call_sid, "leave", _at(event))
    elif settings.queue:
        calls.queue_entered(
            event.call_sid,
            queue=settings.queue,
            queue_sid=event.queue_sid,
            queue_time=event.queue_time,
            timeout=settings.queue_timeout,
            at=utcnow(),
        )
    return _xml(twiml.queue_wait(settings, event.queue_time))


@bp.post("/voice/queue")
@twilio_webhook
def queue_action(params: MultiDict) -> Response:
    """The caller left the queue: bridged to an agent, hung up, or timed out to voicemail."""
    event = _parse_call(params)
    calls.queue_left(event.call_sid, event.queue_result, _at(event))
    if event.queue_result == "bridged":
        calls.dial_ended(event.call_sid, "completed", None, _at(event))
    elif event.queue_result == "hangup":
        calls.call_ended(event.call_sid, "completed", event.duration, _at(event))
    return _xml(twiml.after_queue(_settings_for_call(event.call_sid), _urls(), event.queue_result))


@bp.post("/voice/queue-bridge")
@twilio_webhook
def queue_bridge(params: MultiDict) -> Response:
    """An agent answering the queue dequeued this caller (``CallSid``): the call is theirs; tell the caller."""
    event = _parse_call(params)
    calls.queue_call_bridged(
        event.call_sid,
        request.args.get("agent", type=int),
        agent_leg_sid=event.dequeuing_call_sid,
        claimed_call_id=request.args.get("call", type=int),
        claim_token=request.args.get("claim") or None,
        at=_at(event),
    )
    return _xml(twiml.queue_caller_connected(_settings_for_call(event.call_sid)))


@bp.post("/voice/queue-answer-status")
@twilio_webhook
def queue_answer_status(params: MultiDict) -> Response:
    """The agent's call answering the queue rang, was answered or ended (``agent``/``call``/``claim`` signed)."""
    event = _parse_call(params)
    if event.call_status in TERMINAL_CALL_STATUSES:
        calls.queue_answer_leg_ended(
            event.call_sid,
            request.args.get("agent", type=int),
            claimed_call_id=request.args.get("call", type=int),
            claim_token=request.args.get("claim") or None,
            at=_at(event),
        )
    return _xml(twiml.empty_voice())


@bp.post("/voice/queue-answer")
@twilio_webhook
def queue_answer_action(params: MultiDict) -> Response:
    """The agent's <Dial><Queue> ended: if nobody was left to bridge, say so; then hang up."""
    event = _parse_call(params)
    channel = find_channel("voice", _number(event.from_number))
    settings = twiml.VoiceSettings.from_settings(channel.settings if channel is not None else None)
    db.session.rollback()
    return _xml(twiml.after_queue_answer(settings, event.dial_call_status))


@bp.post("/voice/recording")
@twilio_webhook
def recording_action(params: MultiDict) -> Response:
    """<Record> finished: attach the voicemail to the call item, thank the caller."""
    event = _parse_call(params)
    if event.recording_url:
        calls.voicemail_recorded(
            event.call_sid, url=event.recording_url, duration=event.recording_duration, at=_at(event)
        )
    return _xml(twiml.after_recording(_settings_for_call(event.call_sid)))


@bp.post("/voice/recording-status")
@twilio_webhook
def recording_status(params: MultiDict) -> Response:
    """The recording is stored at Twilio: attach its URL, sid and duration."""
    event = _parse_call(params)
    if event.recording_status == "completed" and event.recording_url:
        calls.voicemail_recorded(
            event.call_sid,
            url=event.recording_url,
            duration=event.recording_duration,
            recording_sid=event.recording_sid,
            at=_at(event),
        )
    return _xml(twiml.empty_voice())


@bp.post("/voice/transcription")
@twilio_webhook
def transcription(params: MultiDict) -> Response:
    """Attach the voicemail transcript to the call item."""
    event = _parse_call(params)
    calls.transcription_ready(event.call_sid, text=event.transcription_text, status=event.transcription_status)
    return _xml(twiml.empty_voice())


@bp.post("/voice/status")
@twilio_webhook
def call_status(params: MultiDict) -> Response:
    """The call's own status callback (inbound: the number's; click-to-call: the agent leg's)."""
    event = _parse_call(params)
    if event.call_status in TERMINAL_CALL_STATUSES:
        calls.call_ended(event.call_sid, event.call_status, event.duration, _at(event))
    elif event.direction == "outbound-api":
        calls.agent_leg_progress(event.call_sid, event.call_status)
    return _xml(twiml.empty_voice())


@bp.post("/voice/bridge")
@twilio_webhook
def bridge(params: MultiDict) -> Response:
    """Click-to-call: the agent answered; dial the customer from the channel's number and bridge them."""
    event = _parse_call(params)
    conversation_id = request.args.get("conversation", type=int)
    agent_id = request.args.get("agent", type=int)
    customer = request.args.get("to", "")
    channel = find_channel("voice", _number(event.from_number))
    if channel is None or not conversation_id or not agent_id or not customer:
        log.warning("click-to-call %s: cannot bridge (channel or parameters missing)", event.call_sid)
        return _xml(twiml.hangup())
    call = calls.record_outbound_call(event.call_sid, conversation_id, agent_id, customer, channel.id)
    calls.agent_leg_progress(call.provider_sid, "in-progress")
    settings = twiml.VoiceSettings.from_settings(channel.settings)
    caller_id = channel.address or event.from_number
    db.session.rollback()
    return _xml(twiml.bridge(settings, _urls(), customer, caller_id))


@bp.post("/voice/outbound-status")
@twilio_webhook
def outbound_status(params: MultiDict) -> Response:
    """Click-to-call: the customer's leg rang, was answered or ended."""
    event = _parse_call(params)
    if event.parent_call_sid:
        calls.customer_leg_status(event.parent_call_sid, event.call_status, event.duration, _at(event))
    return _xml(twiml.empty_voice())


@bp.post("/voice/bridge-action")
@twilio_webhook
def bridge_action(params: MultiDict) -> Response:
    """Click-to-call: the customer leg ended; record how, then end the agent's leg."""
    event = _parse_call(params)
    if event.dial_call_status:
        calls.customer_leg_status(event.call_sid, event.dial_call_status, event.dial_call_duration, _at(event))
    return _xml(twiml.after_bridge(_settings_for_call(event.call_sid), event.dial_call_status))
