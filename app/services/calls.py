"""Phone calls: one Call row and one live-updating timeline item (a Message of kind "call") per call.

Lifecycle: ringing → in-progress (answered by an agent) → completed with duration, or missed / voicemail /
busy / failed / no-answer / canceled. The provider reports legs and events separately and not necessarily in
order, so every change is a forward-only transition on a locked row: repeated or late callbacks change
nothing. A missed call or a voicemail leaves the conversation open and flagged "call back"; an answered call
clears the flag and asks the agent who took it for a wrap-up.

Queue: a caller nobody could take waits in the channel's Twilio queue. Its state lives in ``Call.meta["queue"]``
(entered / left, the agent reserving it); agents list the waiting callers and answer them, which rings the
agent and dials the queue. Joining or leaving the queue publishes ``call_queue.updated`` to every agent.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from app.events import CALL_QUEUE_UPDATED, WRAPUP_REQUESTED, Event, publish
from app.extensions import db
from app.models import Call, Channel, Conversation, CustomerIdentity, Message, User, team_members, utcnow
from app.serializers import iso
from app.services.channels import first_channel
from app.services.errors import Conflict, DomainError, NotFound, ValidationFailed
from app.services.ingest import ingest
from app.services.notify import conversation_changed, message_changed
from connectors.base import InboundMessage, InvalidIdentity, SendError, get_connector, normalize_phone

log = logging.getLogger(__name__)

STATUS_RANK = {"queued": 0, "ringing": 1, "in-progress": 2}
TERMINAL = frozenset({"completed", "missed", "busy", "failed", "no-answer", "canceled", "voicemail"})
UNANSWERED = frozenset({"busy", "failed", "no-answer", "canceled"})


# Past its queue_timeout the wait URL sends a caller to voicemail; an entry older than that plus this margin
# is stale (a lost callback), never shown as waiting.
QUEUE_GRACE = dt.timedelta(seconds=60)
# An agent's reservation of a waiting caller: their phone rings (30 s), then the queue dial; long enough for that.
CLAIM_TTL = dt.timedelta(seconds=90)
QUEUE_LOOKBACK = dt.timedelta(hours=2)  # ring timeout + the longest queue timeout, with room to spare


class CallFailed(DomainError):
    """The provider would not place the call."""

    code = "call_failed"


class QueueAnswerFailed(DomainError):
    """Twilio would not place the call that answers the queue (the API answers 502)."""

    code = "twilio_error"


class Dialer(Protocol):
    """What a voice connector offers for click-to-call."""

    def place_call(
        self, *, from_number: str, agent_endpoint: str, customer_number: str, conversation_id: int, agent_id: int
    ) -> str: ...


class QueueDialer(Protocol):
    """What a voice connector offers for answering the queue."""

    def answer_queue(
        self,
        *,
        from_number: str,
        agent_endpoint: str,
        queue: str,
        agent_id: int,
        call_id: int,
        claim: str,
        channel_settings: Mapping[str, Any] | None = None,
    ) -> str: ...


def _locked_call(sid: str) -> Call | None:
    query = select(Call).where(Call.provider_sid == sid)
    if db.dialect == "postgresql":
        query = query.with_for_update()
    return db.session.scalar(query)


def _locked_call_by_id(call_id: int) -> Call | None:
    query = select(Call).where(Call.id == call_id).execution_options(populate_existing=True)
    if db.dialect == "postgresql":
        query = query.with_for_update()
    return db.session.scalar(query)


def is_terminal(call: Call) -> bool:
    return call.status in TERMINAL


def _duration_text(seconds: int | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def _head(direction: str, number: str | None) -> str:
    if direction == "out":
        return f"Outbound call to {number or 'customer'}"
    withheld = not number or not number.startswith("+")
    return f"Call from {'a withheld number' if withheld else number}"


def summary(call: Call) -> str:
    """Return the one-line text of the call's timeline item (previews, search, notifications)."""
    agent = db.session.get(User, call.agent_id) if call.agent_id else None
    who = f" by {agent.name}" if agent else ""
    head = _head(call.direction, call.to_number if call.direction == "out" else call.from_number)
    if call.status == "ringing" or call.status == "queued":
        state = _queue_state(call)
        if call.direction == "in" and state is not None and not state.get("left_at"):
            return f"{head}: waiting in queue"
        return f"{head}: ringing"
    if call.status == "in-progress":
        return f"{head}: in progress{', answered' + who if who else ''}"
    if call.status == "completed":
        return f"{head}: {_duration_text(call.duration)}{', answered' + who if who else ''}"
    if call.status == "voicemail":
        text = f"{head}: voicemail ({_duration_text(call.recording_duration)})"
        return f"{text}: {call.transcription}" if call.transcription else text
    if call.status == "missed":
        return f"{head}: missed"
    return f"{head}: {call.status.replace('-', ' ')}"


def _publish_call(call: Call, message: Message, conversation: Conversation, *, conversation_touched: bool) -> None:
    state = _queue_state(call)
    if state is not None and not state.get("left_at") and (is_terminal(call) or call.answered_at is not None):
        _leave_queue(call, "bridged" if call.answered_at is not None else call.status)
    message.text = summary(call)
    message_changed(message, conversation, created=False, call=call)
    if conversation_touched:
        conversation_changed(conversation)


def _parts(call: Call) -> tuple[Message, Conversation]:
    message = db.session.get_one(Message, call.message_id)
    conversation = db.session.get_one(Conversation, message.conversation_id)
    return message, conversation


# ----------------------------------------------------------------------------------------------- inbound


def record_inbound_call(inbound: InboundMessage, channel: Channel) -> Call:
    """Put a new inbound call on the caller's timeline (idempotent on the call sid) and return its Call."""
    assert inbound.provider_id, "a call needs its provider sid"
    twilio = inbound.metadata.get("twilio") or {}
    if not inbound.text:  # the item reads right from its first event on
        inbound.text = f"{_head('in', twilio.get('from') or inbound.sender.value)}: ringing"
    result = ingest(inbound, channel)
    existing = db.session.scalar(select(Call).where(Call.provider_sid == inbound.provider_id))
    if existing is not None:
        db.session.commit()
        return existing
    call = Call(
        message_id=result.message.id,
        provider_sid=inbound.provider_id,
        direction="in",
        status="ringing",
        from_number=(twilio.get("from") or inbound.sender.value)[:32],
        to_number=(twilio.get("to") or inbound.recipient)[:32],
        started_at=result.message.created_at,
        meta={"channel_id": channel.id},
    )
    db.session.add(call)
    try:
        db.session.flush()
    except IntegrityError:  # the same webhook, retried concurrently, created it first
        db.session.rollback()
        return db.session.scalars(select(Call).where(Call.provider_sid == inbound.provider_id)).one()
    message, conversation = _parts(call)
    _publish_call(call, message, conversation, conversation_touched=False)
    db.session.commit()
    return call


def available_agents(channel: Channel) -> list[User]:
    """Return the agents a call on ``channel`` may ring: active, available, reachable, not on another call."""
    busy = exists().where(Call.agent_id == User.id, Call.status == "in-progress")
    query = (
        select(User)
        .where(
            User.active.is_(True),
            User.available.is_(True),
            (User.phone.is_not(None)) | (User.client_identity.is_not(None)),
            ~busy,
        )
        .order_by(User.id)
    )
    if channel.team_id is not None:
        query = query.join(team_members, team_members.c.user_id == User.id).where(
            team_members.c.team_id == channel.team_id
        )
    return list(db.session.scalars(query))


def _complete(call: Call, conversation: Conversation, at: dt.datetime, duration: int | None) -> None:
    call.status = "completed"
    call.ended_at = at
    if duration is None and call.answered_at is not None:
        duration = max(0, int((at - call.answered_at).total_seconds()))
    call.duration = duration
    if call.agent_id is not None:
        _request_wrapup(call, conversation)


def _request_wrapup(call: Call, conversation: Conversation) -> None:
    """Ask the agent who took the call to wrap it up (the topics prompt); only they receive it."""
    assert call.agent_id is not None
    publish(
        db.session,
        Event(
            WRAPUP_REQUESTED,
            {
                "reason": "call",
                "conversation_id": conversation.id,
                "conversation_number": conversation.number,
                "call_id": call.id,
                "message_id": call.message_id,
                "duration": call.duration,
            },
            user_ids=(call.agent_id,),
            all_agents=False,
            private=True,
        ),
    )


def _reached(conversation: Conversation, at: dt.datetime) -> bool:
    """The customer and an agent talked: clear "call back" and count it as a response."""
    changed = conversation.call_back
    conversation.call_back = False
    if conversation.first_response_at is None:
        conversation.first_response_at = at
        changed = True
    conversation.last_activity_at = at
    return changed


def _flag_call_back(conversation: Conversation, at: dt.datetime) -> None:
    conversation.call_back = True
    if conversation.status != "open":
        conversation.status = "open"
        conversation.snoozed_until = None
        conversation.resolved_at = None
    conversation.last_activity_at = at


def call_answered(sid: str, agent_id: int | None, at: dt.datetime | None = None) -> Call | None:
    """An agent's leg of an inbound call was answered: the call is in progress, taken by that agent."""
    at = at or utcnow()
    call = _locked_call(sid)
    if call is None:
        db.session.rollback()
        return None
    _mark_answered(call, agent_id, at)
    db.session.commit()
    return call


def _mark_answered(call: Call, agent_id: int | None, at: dt.datetime) -> bool:
    """Record that ``agent_id`` took the call (forward-only); publish and return whether anything changed."""
    message, conversation = _parts(call)
    changed = False
    if call.status == "completed" and call.agent_id is None and agent_id is not None:
        # The dial ended before this (late) answered event arrived: name the agent now.
        call.agent_id = agent_id
        _request_wrapup(call, conversation)
        changed = True
    elif not is_terminal(call) and call.answered_at is None:
        call.status = "in-progress"
        call.answered_at = at
        call.agent_id = agent_id
        changed = True
    if changed:
        _publish_call(call, message, conversation, conversation_touched=_reached(conversation, at))
    return changed


def agent_leg_ended(sid: str, agent_id: int | None, duration: int | None, at: dt.datetime | None = None) -> Call | None:
    """An agent's leg ended; when it was the leg that took the call, the call is completed."""
    at = at or utcnow()
    call = _locked_call(sid)
    if call is None or is_terminal(call) or call.answered_at is None or call.agent_id != agent_id:
        db.session.rollback()
        return call
    message, conversation = _parts(call)
    _complete(call, conversation, at, duration)
    _publish_call(call, message, conversation, conversation_touched=False)
    db.session.commit()
    return call


def dial_ended(sid: str, dial_status: str | None, duration: int | None, at: dt.datetime | None = None) -> Call | None:
    """The <Dial> to the agents ended: an answered call is completed; otherwise the caller moves on."""
    at = at or utcnow()
    call = _locked_call(sid)
    if call is None or is_terminal(call) or dial_status not in ("completed", "answered"):
        db.session.rollback()
        return call
    message, conversation = _parts(call)
    if call.answered_at is None:  # the answered leg event has not arrived (yet)
        call.answered_at = at - dt.timedelta(seconds=duration or 0)
        _reached(conversation, at)
    _complete(call, conversation, at, duration)
    _publish_call(call, message, conversation, conversation_touched=True)
    db.session.commit()
    return call


def call_ended(sid: str, provider_status: str, duration: int | None, at: dt.datetime | None = None) -> Call | None:
    """The caller's own leg ended (the call as a whole): settle the final status if no leg did already."""
    at = at or utcnow()
    call = _locked_call(sid)
    if call is None or is_terminal(call):
        db.session.rollback()
        return call
    message, conversation = _parts(call)
    if call.answered_at is not None:
        _complete(call, conversation, at, None)
        _publish_call(call, message, conversation, conversation_touched=False)
    elif call.direction == "in":
        call.status = "voicemail" if call.voicemail else "missed"
        call.ended_at = at
        _flag_call_back(conversation, at)
        _publish_call(call, message, conversation, conversation_touched=True)
    else:
        leg = (call.meta or {}).get("customer_leg_status")
        call.status = leg if leg in UNANSWERED else provider_status if provider_status in UNANSWERED else "no-answer"
        call.ended_at = at
        _publish_call(call, message, conversation, conversation_touched=False)
    db.session.commit()
    return call


def voicemail_recorded(
    sid: str, *, url: str | None, duration: int | None, recording_sid: str | None = None, at: dt.datetime | None = None
) -> Call | None:
    """The caller left a voicemail: attach the recording, mark the call, flag the conversation "call back"."""
    at = at or utcnow()
    call = _locked_call(sid)
    if call is None or not url:
        db.session.rollback()
        return call
    message, conversation = _parts(call)
    unchanged = (
        call.voicemail
        and call.recording_url == url
        and (duration is None or call.recording_duration == duration)
        and (recording_sid is None or call.recording_sid == recording_sid)
    )
    if unchanged:
        db.session.rollback()
        return call
    call.voicemail = True
    call.recording_url = url
    call.recording_duration = duration if duration is not None else call.recording_duration
    call.recording_sid = recording_sid or call.recording_sid
    flagged = False
    if call.direction == "in" and (not is_terminal(call) or call.status == "missed"):
        call.status = "voicemail"
        call.ended_at = call.ended_at or at
        _flag_call_back(conversation, at)
        flagged = True
    _publish_call(call, message, conversation, conversation_touched=flagged)
    db.session.commit()
    return call


def transcription_ready(sid: str, *, text: str | None, status: str | None) -> Call | None:
    """Attach the voicemail's transcript (or note that transcription failed)."""
    call = _locked_call(sid)
    if call is None:
        db.session.rollback()
        return call
    message, conversation = _parts(call)
    if status == "completed" and text:
        if call.transcription == text:
            db.session.rollback()
            return call
        call.transcription = text
    else:
        call.meta = {**(call.meta or {}), "transcription_status": status or "failed"}
    _publish_call(call, message, conversation, conversation_touched=False)
    db.session.commit()
    return call


# ---------------------------------------------------------------------------------------------- outbound


def _voice_channel(conversation: Conversation, channel_id: int | None) -> Channel:
    if channel_id is not None:
        channel = db.session.get(Channel, channel_id)
        if channel is None or channel.kind != "voice" or not channel.enabled:
            raise ValidationFailed("not an enabled voice channel", fields={"channel_id": "pick a voice channel"})
        return channel
    if conversation.channel_id is not None:
        channel = db.session.get(Channel, conversation.channel_id)
        if channel is not None and channel.kind == "voice" and channel.enabled:
            return channel
    channel = db.session.scalar(
        select(Channel)
        .join(Message, Message.channel_id == Channel.id)
        .where(Message.conversation_id == conversation.id, Channel.kind == "voice", Channel.enabled.is_(True))
        .order_by(Message.id.desc())
        .limit(1)
    ) or first_channel("voice")
    if channel is None:
        raise ValidationFailed(
            "no voice channel is configured", code="no_channel", fields={"channel_id": "configure one"}
        )
    return channel


def _customer_phone(conversation: Conversation) -> CustomerIdentity:
    phones = [identity for identity in conversation.customer.identities if identity.kind == "phone"]
    if not phones:
        raise ValidationFailed("the customer has no phone number", code="no_recipient", fields={"to": "add one"})
    last_used = db.session.scalar(
        select(Message.identity_id)
        .where(Message.customer_id == conversation.customer_id, Message.identity_id.in_([p.id for p in phones]))
        .order_by(Message.id.desc())
        .limit(1)
    )
    return max(phones, key=lambda identity: (identity.id == last_used, identity.verified, identity.id))


def agent_endpoint(agent: User) -> str:
    """Return where click-to-call rings the agent: their phone, else their Twilio Client identity."""
    if agent.phone:
        try:
            return normalize_phone(agent.phone, current_app.config.get("DEFAULT_PHONE_REGION"))
        except InvalidIdentity:
            raise ValidationFailed(
                f"your profile's phone number {agent.phone!r} is not a valid number",
                code="no_agent_phone",
                fields={"phone": "not a valid phone number"},
            ) from None
    if agent.client_identity:
        return f"client:{agent.client_identity}"
    raise ValidationFailed(
        "add your phone number (or a Twilio Client identity) to your profile to place calls",
        code="no_agent_phone",
        fields={"phone": "required"},
    )


def start_click_to_call(
    conversation_id: int,
    agent: User,
    *,
    settings: dict[str, Any],
    channel_id: int | None = None,
    to_identity_id: int | None = None,
) -> Call:
    """Ring the agent's phone; once they answer, the provider dials the customer and bridges the two."""
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} not found")
    channel = _voice_channel(conversation, channel_id)
    if to_identity_id is not None:
        identity = db.session.get(CustomerIdentity, to_identity_id)
        if identity is None or identity.customer_id != conversation.customer_id or identity.kind != "phone":
            raise ValidationFailed("not one of the customer's phone numbers", fields={"to_identity_id": "unknown"})
    else:
        identity = _customer_phone(conversation)
    endpoint = agent_endpoint(agent)
    from_number, customer_number, channel_pk = channel.address or "", identity.value, channel.id
    # End the read transaction before the provider call: SQLite holds its write lock for the whole transaction.
    db.session.commit()
    dialer = get_connector("voice", settings)
    if not hasattr(dialer, "place_call"):
        raise CallFailed("the voice connector cannot place calls")
    try:
        sid = dialer.place_call(
            from_number=from_number,
            agent_endpoint=endpoint,
            customer_number=customer_number,
            conversation_id=conversation_id,
            agent_id=agent.id,
        )
    except SendError as exc:
        raise CallFailed(f"the call could not be placed: {exc}") from None
    return record_outbound_call(sid, conversation_id, agent.id, customer_number, channel_pk)


def record_outbound_call(sid: str, conversation_id: int, agent_id: int, customer_number: str, channel_id: int) -> Call:
    """Put a click-to-call call on the timeline (get-or-create on the sid: the bridge webhook may come first)."""
    existing = db.session.scalar(select(Call).where(Call.provider_sid == sid))
    if existing is not None:
        db.session.commit()
        return existing
    conversation = db.session.get_one(Conversation, conversation_id)
    channel = db.session.get_one(Channel, channel_id)
    identity = db.session.scalar(
        select(CustomerIdentity).where(CustomerIdentity.kind == "phone", CustomerIdentity.value == customer_number)
    )
    now = utcnow()
    message = Message(
        conversation_id=conversation.id,
        customer_id=conversation.customer_id,
        channel="voice",
        channel_id=channel.id,
        direction="out",
        kind="call",
        author_id=agent_id,
        identity_id=identity.id if identity else None,
        provider_id=sid,
        delivery_status="sent",  # not an outbox item: the call was placed already
        sent_at=now,
        created_at=now,
    )
    db.session.add(message)
    try:
        db.session.flush()
        call = Call(
            message_id=message.id,
            provider_sid=sid,
            direction="out",
            status="queued",
            from_number=(channel.address or "")[:32],
            to_number=customer_number[:32],
            agent_id=agent_id,
            started_at=now,
            meta={"channel_id": channel.id},
        )
        db.session.add(call)
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return db.session.scalars(select(Call).where(Call.provider_sid == sid)).one()
    conversation.last_channel = "voice"
    conversation.last_activity_at = now
    message.text = summary(call)
    message_changed(message, conversation, call=call)
    conversation_changed(conversation)
    db.session.commit()
    return call


def customer_leg_status(
    sid: str, leg_status: str, duration: int | None = None, at: dt.datetime | None = None
) -> Call | None:
    """Click-to-call: the customer's leg rang, answered or ended (``sid`` is the agent leg, our call)."""
    at = at or utcnow()
    call = _locked_call(sid)
    if call is None or is_terminal(call):
        db.session.rollback()
        return call
    message, conversation = _parts(call)
    changed = conversation_changed = False
    if leg_status in ("ringing", "initiated", "queued") and call.status == "queued":
        call.status = "ringing"
        changed = True
    elif leg_status in ("in-progress", "answered") and call.answered_at is None:
        call.status = "in-progress"
        call.answered_at = at
        conversation_changed = _reached(conversation, at)
        changed = True
    elif leg_status == "completed":  # only an answered leg completes; unanswered ones end as no-answer etc.
        if call.answered_at is None:  # the answered event has not arrived (yet)
            call.answered_at = at - dt.timedelta(seconds=duration or 0)
            conversation_changed = _reached(conversation, at)
        _complete(call, conversation, at, duration)
        changed = True
    elif leg_status in UNANSWERED:
        call.meta = {**(call.meta or {}), "customer_leg_status": leg_status}
        call.status = leg_status
        call.ended_at = at
        changed = True
    if changed:
        _publish_call(call, message, conversation, conversation_touched=conversation_changed)
        db.session.commit()
    else:
        db.session.rollback()
    return call


def agent_leg_progress(sid: str, status: str) -> Call | None:
    """Click-to-call: the agent's own leg is ringing (the call is placed) — show it as ringing."""
    call = _locked_call(sid)
    if call is None or call.direction != "out" or call.status != "queued" or status not in ("ringing", "in-progress"):
        db.session.rollback()
        return call
    message, conversation = _parts(call)
    call.status = "ringing"
    _publish_call(call, message, conversation, conversation_touched=False)
    db.session.commit()
    return call


# ------------------------------------------------------------------------------------------------- queue


def _queue_state(call: Call) -> dict[str, Any] | None:
    state = (call.meta or {}).get("queue")
    return state if isinstance(state, dict) else None


def _set_queue_state(call: Call, state: dict[str, Any]) -> None:
    call.meta = {**(call.meta or {}), "queue": state}  # a new dict: the JSON column sees the change


def _parse_at(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _active_claim(state: dict[str, Any], now: dt.datetime) -> dict[str, Any] | None:
    """The agent currently answering this caller, unless their reservation lapsed."""
    claim = state.get("claim")
    if not isinstance(claim, dict):
        return None
    at = _parse_at(claim.get("at"))
    return claim if at is not None and now - at <= CLAIM_TTL else None


def is_waiting(call: Call, now: dt.datetime | None = None) -> bool:
    """Whether the caller is in the queue now: entered, not left, not answered or ended, not stale."""
    state = _queue_state(call)
    if state is None or state.get("left_at") or call.direction != "in":
        return False
    if is_terminal(call) or call.answered_at is not None:
        return False
    entered = _parse_at(state.get("entered_at"))
    if entered is None:
        return False
    timeout = dt.timedelta(seconds=int(state.get("timeout") or 3600))
    return (now or utcnow()) <= entered + timeout + QUEUE_GRACE


def _waiting_calls(now: dt.datetime) -> list[Call]:
    """The callers waiting in any queue, longest waiting first (the order Twilio dequeues them in)."""
    candidates = db.session.scalars(
        select(Call).where(
            Call.direction == "in",
            Call.status.in_(("queued", "ringing")),
            Call.answered_at.is_(None),
            Call.started_at >= now - QUEUE_LOOKBACK,
        )
    )
    waiting = [call for call in candidates if is_waiting(call, now)]
    waiting.sort(key=lambda call: (_parse_at((_queue_state(call) or {}).get("entered_at")) or now, call.id))
    return waiting


def _positions(waiting: list[Call]) -> dict[int, int]:
    """Each caller's place in their own queue (1 = next to be bridged)."""
    counts: dict[str, int] = {}
    positions: dict[int, int] = {}
    for call in waiting:
        name = str((_queue_state(call) or {}).get("name") or "")
        counts[name] = counts.get(name, 0) + 1
        positions[call.id] = counts[name]
    return positions


def _queue_entry(call: Call, now: dt.datetime, position: int | None) -> dict[str, Any]:
    state = _queue_state(call) or {}
    message, conversation = _parts(call)
    claim = _active_claim(state, now)
    agent = db.session.get(User, claim.get("agent_id")) if claim else None
    entered = _parse_at(state.get("entered_at"))
    return {
        "call_id": call.id,
        "sid": call.provider_sid,
        "message_id": message.id,
        "conversation_id": conversation.id,
        "conversation_number": conversation.number,
        "customer": {"id": conversation.customer_id, "name": conversation.customer.name},
        "from": call.from_number,
        "channel_id": (call.meta or {}).get("channel_id"),
        "queue": state.get("name"),
        "entered_at": iso(entered),
        "wait_seconds": max(0, int((now - entered).total_seconds())) if entered else 0,
        "position": position,
        "answering": (
            {"agent_id": claim.get("agent_id"), "name": agent.name if agent else None, "since": claim.get("at")}
            if claim
            else None
        ),
    }


def queue_entries(now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The waiting callers with their customer, wait time, position and who is answering them, if anyone."""
    now = now or utcnow()
    waiting = _waiting_calls(now)
    positions = _positions(waiting)
    entries = [_queue_entry(call, now, positions[call.id]) for call in waiting]
    db.session.rollback()  # end the read transaction
    return entries


def _publish_queue(call: Call) -> None:
    """Queue call_queue.updated for every agent: the caller's entry while they wait, else just that they left."""
    now = utcnow()
    waiting = is_waiting(call, now)
    entry = None
    if waiting:
        entry = _queue_entry(call, now, _positions(_waiting_calls(now)).get(call.id))
    state = _queue_state(call) or {}
    publish(
        db.session,
        Event(
            CALL_QUEUE_UPDATED,
            {"call_id": call.id, "waiting": waiting, "entry": entry, "result": state.get("result")},
            private=True,
        ),
    )


def _leave_queue(call: Call, result: str, at: dt.datetime | None = None) -> None:
    state = _queue_state(call)
    if state is None or state.get("left_at"):
        return
    _set_queue_state(call, {**state, "left_at": iso(at or utcnow()), "result": result, "claim": None})
    _publish_queue(call)


def queue_entered(
    sid: str,
    *,
    queue: str,
    queue_sid: str | None = None,
    queue_time: int | None = None,
    timeout: int = 3600,
    at: dt.datetime | None = None,
) -> Call | None:
    """Twilio holds the caller in ``queue`` (its wait URL asked for hold music): they are waiting now.

    The wait URL is requested again every few seconds; only the first request changes anything.
    """
    at = at or utcnow()
    call = _locked_call(sid)
    if call is None or call.direction != "in" or is_terminal(call) or call.answered_at is not None:
        db.session.rollback()
        return call
    if _queue_state(call) is not None:  # already waiting (or left: a late wait request never re-enters)
        db.session.rollback()
        return call
    entered = at - dt.timedelta(seconds=max(0, queue_time or 0))
    _set_queue_state(
        call,
        {
            "name": queue[:64],
            "sid": queue_sid,
            "entered_at": iso(entered),
            "timeout": int(timeout),
            "left_at": None,
            "result": None,
            "claim": None,
            "answer_leg": None,
        },
    )
    message, conversation = _parts(call)
    _publish_call(call, message, conversation, conversation_touched=False)
    _publish_queue(call)
    db.session.commit()
    return call


def queue_left(sid: str, result: str | None, at: dt.datetime | None = None) -> Call | None:
    """The caller left the queue (timed out to voicemail, hung up, bridged, or Twilio's queue failed)."""
    call = _locked_call(sid)
    state = _queue_state(call) if call is not None else None
    if call is None or state is None or state.get("left_at"):
        db.session.rollback()
        return call
    _leave_queue(call, result or "left", at)
    message, conversation = _parts(call)
    _publish_call(call, message, conversation, conversation_touched=False)
    db.session.commit()
    return call


@dataclass(frozen=True, slots=True)
class QueueAnswer:
    """An agent is being rung to take a waiting caller."""

    call: Call
    agent_call_sid: str
    agent_endpoint: str
    entry: dict[str, Any]


def _pick_waiting(agent: User, call_id: int | None, now: dt.datetime) -> Call:
    waiting = _waiting_calls(now)
    if call_id is None:
        if not waiting:
            raise Conflict("nobody is waiting in the queue", code="queue_empty")
        free = [call for call in waiting if _active_claim(_queue_state(call) or {}, now) is None]
        if not free:
            raise Conflict("every waiting caller is already being answered", code="queue_empty")
        return free[0]
    target = db.session.get(Call, call_id)
    if target is None or target.direction != "in":
        raise NotFound(f"call {call_id} not found")
    if target not in waiting:
        raise Conflict("this caller is no longer waiting in the queue", code="not_waiting")
    state = _queue_state(target) or {}
    claim = _active_claim(state, now)
    if claim is not None and claim.get("agent_id") != agent.id:
        raise Conflict("another agent is already answering this caller", code="already_answering")
    # <Dial><Queue> bridges the queue's longest waiting caller: callers ahead that nobody answers come first.
    ahead = [
        call
        for call in waiting[: waiting.index(target)]
        if (_queue_state(call) or {}).get("name") == state.get("name")
        and _active_claim(_queue_state(call) or {}, now) is None
    ]
    if ahead:
        raise Conflict(
            f"callers are answered in the order they joined the queue: {len(ahead)} waiting longer must be"
            " answered first",
            code="not_next",
        )
    return target


def answer_queue(agent: User, *, settings: dict[str, Any], call_id: int | None = None) -> QueueAnswer:
    """Ring ``agent`` (phone or Twilio Client) with TwiML that dials the queue of the next waiting caller.

    The caller is reserved for the agent while their phone rings, so a colleague pressing Answer at the same
    time takes the next caller instead. Which caller Twilio bridges is recorded when it happens (the <Queue>
    url webhook): in progress, answered by the agent, then completed when either side hangs up.
    """
    endpoint = agent_endpoint(agent)
    now = utcnow()
    target = _pick_waiting(agent, call_id, now)
    call = _locked_call_by_id(target.id)  # re-read under the row lock: a colleague may have just taken it
    state = _queue_state(call) if call is not None else None
    claim = _active_claim(state, now) if state is not None else None
    if call is None or state is None or not is_waiting(call, now) or (claim and claim.get("agent_id") != agent.id):
        db.session.rollback()
        raise Conflict("another agent has just taken this caller; try again", code="already_answering")
    token = secrets.token_urlsafe(9)
    _set_queue_state(call, {**state, "claim": {"agent_id": agent.id, "token": token, "at": iso(now)}})
    _publish_queue(call)
    channel = db.session.get(Channel, (call.meta or {}).get("channel_id"))
    from_number = (channel.address if channel is not None and channel.address else call.to_number) or ""
    channel_settings = dict(channel.settings or {}) if channel is not None else {}
    call_pk, queue = call.id, str(state.get("name") or "")
    # Commit the reservation before ringing: the row lock (and SQLite's write lock) must not wait on Twilio.
    db.session.commit()
    dialer = get_connector("voice", settings)
    try:
        if not hasattr(dialer, "answer_queue"):
            raise QueueAnswerFailed("the voice connector cannot answer queued calls")
        leg_sid = dialer.answer_queue(
            from_number=from_number,
            agent_endpoint=endpoint,
            queue=queue,
            agent_id=agent.id,
            call_id=call_pk,
            claim=token,
            channel_settings=channel_settings,
        )
    except SendError as exc:
        release_queue_claim(call_pk, token)
        raise QueueAnswerFailed(f"Twilio could not place the call to you: {exc}") from None
    except QueueAnswerFailed:
        release_queue_claim(call_pk, token)
        raise
    answered = db.session.get_one(Call, call_pk)
    now = utcnow()
    entry = _queue_entry(answered, now, _positions(_waiting_calls(now)).get(call_pk))
    db.session.commit()
    return QueueAnswer(answered, leg_sid, endpoint, entry)


def release_queue_claim(call_id: int, token: str) -> Call | None:
    """Drop an agent's reservation of a caller (their phone was not answered, or Twilio refused the call)."""
    call = _locked_call_by_id(call_id)
    state = _queue_state(call) if call is not None else None
    claim = state.get("claim") if state is not None else None
    if call is None or state is None or not isinstance(claim, dict) or claim.get("token") != token:
        db.session.rollback()
        return call
    _set_queue_state(call, {**state, "claim": None})
    if is_waiting(call):
        _publish_queue(call)
    db.session.commit()
    return call


def queue_call_bridged(
    sid: str,
    agent_id: int | None,
    *,
    agent_leg_sid: str | None,
    claimed_call_id: int | None = None,
    claim_token: str | None = None,
    at: dt.datetime | None = None,
) -> Call | None:
    """Twilio dequeued caller ``sid`` for the agent answering the queue: the call is in progress, theirs."""
    at = at or utcnow()
    call = _locked_call(sid)
    if call is None:
        db.session.rollback()
    else:
        state = _queue_state(call)
        if state is not None:
            _set_queue_state(call, {**state, "answer_leg": agent_leg_sid, "claim": None})
        else:  # dequeued before any wait request reached us: remember the agent's leg all the same
            _set_queue_state(call, {"answer_leg": agent_leg_sid, "left_at": iso(at), "result": "bridged"})
        if not _mark_answered(call, agent_id, at):
            message, conversation = _parts(call)
            _publish_call(call, message, conversation, conversation_touched=False)
        db.session.commit()
    if claimed_call_id and claim_token and (call is None or call.id != claimed_call_id):
        # Twilio bridged another caller than the one reserved (it dequeues in its own order): free that one.
        release_queue_claim(claimed_call_id, claim_token)
    return call


def queue_answer_leg_ended(
    agent_leg_sid: str,
    agent_id: int | None,
    *,
    claimed_call_id: int | None = None,
    claim_token: str | None = None,
    at: dt.datetime | None = None,
) -> Call | None:
    """The agent's call answering the queue ended: complete the call it was bridged with, or free the caller."""
    at = at or utcnow()
    taken = db.session.scalars(
        select(Call).where(Call.direction == "in", Call.agent_id == agent_id, Call.status == "in-progress")
    )
    bridged = next((call for call in taken if (_queue_state(call) or {}).get("answer_leg") == agent_leg_sid), None)
    bridged_sid = bridged.provider_sid if bridged is not None else None
    db.session.rollback()
    result = None
    if bridged_sid is not None:
        # Like a direct answer's agent leg ending; the duration counts from the bridge, not from the ring.
        result = agent_leg_ended(bridged_sid, agent_id, None, at)
    if claimed_call_id and claim_token:
        release_queue_claim(claimed_call_id, claim_token)
    return result
