"""Phone calls: one Call row and one live-updating timeline item (a Message of kind "call") per call.

Lifecycle: ringing → in-progress (answered by an agent) → completed with duration, or missed / voicemail /
busy / failed / no-answer / canceled. The provider reports legs and events separately and not necessarily in
order, so every change is a forward-only transition on a locked row: repeated or late callbacks change
nothing. A missed call or a voicemail leaves the conversation open and flagged "call back"; an answered call
clears the flag and asks the agent who took it for a wrap-up.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from app.events import WRAPUP_REQUESTED, Event, publish
from app.extensions import db
from app.models import Call, Channel, Conversation, CustomerIdentity, Message, User, team_members, utcnow
from app.services.channels import first_channel
from app.services.errors import DomainError, NotFound, ValidationFailed
from app.services.ingest import ingest
from app.services.notify import conversation_changed, message_changed
from connectors.base import InboundMessage, InvalidIdentity, SendError, get_connector, normalize_phone

log = logging.getLogger(__name__)

STATUS_RANK = {"queued": 0, "ringing": 1, "in-progress": 2}
TERMINAL = frozenset({"completed", "missed", "busy", "failed", "no-answer", "canceled", "voicemail"})
UNANSWERED = frozenset({"busy", "failed", "no-answer", "canceled"})


class CallFailed(DomainError):
    """The provider would not place the call."""

    code = "call_failed"


class Dialer(Protocol):
    """What a voice connector offers for click-to-call."""

    def place_call(
        self, *, from_number: str, agent_endpoint: str, customer_number: str, conversation_id: int, agent_id: int
    ) -> str: ...


def _locked_call(sid: str) -> Call | None:
    query = select(Call).where(Call.provider_sid == sid)
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
    db.session.commit()
    return call


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
