"""Ingest: every inbound message from every channel goes through here.

resolve the customer by identity → route to a conversation → store idempotently → commit → publish.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Channel, Conversation, Customer, Message, utcnow
from app.models.conversation import ACTIVE_STATUSES
from app.services import attachments as files
from app.services.customers import find_or_create_customer
from app.services.notify import conversation_changed, message_changed
from app.services.reply_tokens import conversation_id_for_token
from connectors.base import InboundMessage, ThreadHints

log = logging.getLogger(__name__)

MESSAGE_KIND = {"message": "message", "call": "call", "voicemail": "call", "status": "event"}
MAX_ATTEMPTS = 4
# "Last seen" is shown to the minute; a chatty customer must not cost an extra UPDATE for every message.
LAST_SEEN_RESOLUTION = dt.timedelta(minutes=1)

# Every inbound message runs these; they are built once because building a statement costs several times
# more than SQLite takes to run it.
_DUPLICATE = select(Message).where(Message.channel == bindparam("channel"), Message.provider_id == bindparam("pid"))
_LOCK_CUSTOMER = select(Customer.id).where(Customer.id == bindparam("customer_id")).with_for_update()
_ACTIVE_CONVERSATION = (
    select(Conversation)
    .where(Conversation.customer_id == bindparam("customer_id"), Conversation.status.in_(ACTIVE_STATUSES))
    .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
    .limit(1)
)
_RECENTLY_RESOLVED = (
    select(Conversation)
    .where(
        Conversation.customer_id == bindparam("customer_id"),
        Conversation.status == "resolved",
        Conversation.resolved_at >= bindparam("reopen_after"),
    )
    .order_by(Conversation.resolved_at.desc())
    .limit(1)
)


@dataclass(slots=True)
class IngestResult:
    message: Message
    conversation: Conversation
    customer: Customer
    created: bool  # False when the provider id was seen before (a retry): nothing new was stored
    conversation_created: bool = False  # the message started a new conversation


def ingest(
    inbound: InboundMessage, channel: Channel, *, now: dt.datetime | None = None, commit: bool = True
) -> IngestResult:
    """Store an inbound message in the right conversation of the right customer, exactly once.

    ``now`` is the clock routing and timestamps use (the current time unless a caller replays history).
    ``commit=False`` leaves the transaction open (everything flushed, the events queued) for a caller that
    records something in the same transaction and commits it: the mail spool marks its row stored, so a mail
    is never stored without its spool row saying so, and on SQLite the write lock is taken once, not twice.
    """
    # Files first, outside any transaction: on SQLite a transaction holds the write lock, and writing a mail's
    # attachments must not keep other writers (the SMTP server spooling the next mail) waiting.
    stored = _StoredFiles(
        raw=files.store_bytes(inbound.raw) if inbound.raw is not None else None,
        attachments=[files.store_bytes(item.data) for item in inbound.attachments],
    )
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            # Optimistic first: redeliveries are rare, and the unique (channel, provider_id) constraint catches
            # them at the insert; only a retry pays for looking the provider id up first.
            result = _ingest_once(inbound, channel, now or utcnow(), stored, check_duplicate=attempt > 1)
            if commit:
                db.session.commit()
            return result
        except IntegrityError:
            # A redelivery, or a concurrent ingest that created the same customer/identity first.
            db.session.rollback()
            if attempt == MAX_ATTEMPTS:
                raise
            log.info("ingest retry %d after a conflicting insert (%s)", attempt, inbound.sender.value)
    raise AssertionError("unreachable")


def find_duplicate(channel_kind: str, provider_id: str | None) -> Message | None:
    if not provider_id:
        return None
    return db.session.execute(_DUPLICATE, {"channel": channel_kind, "pid": provider_id}).scalar()


@dataclass(frozen=True, slots=True)
class _StoredFiles:
    raw: str | None  # SHA-256 of the raw source in the file store
    attachments: list[str]  # SHA-256 of each attachment, in order


def _ingest_once(
    inbound: InboundMessage, channel: Channel, now: dt.datetime, stored: _StoredFiles, *, check_duplicate: bool
) -> IngestResult:
    duplicate = find_duplicate(channel.kind, inbound.provider_id) if check_duplicate else None
    if duplicate is not None:
        conversation = db.session.get_one(Conversation, duplicate.conversation_id)
        return IngestResult(duplicate, conversation, conversation.customer, created=False)

    verified = bool(inbound.metadata.get("sender_verified", True))
    customer, identity, first_contact = find_or_create_customer(
        inbound.sender, name=inbound.sender_name, source=channel.kind, verified=verified
    )
    if db.dialect == "postgresql" and not first_contact:  # a customer created here is invisible to others
        # Two messages from one customer at once must not both start a conversation: routing runs one
        # customer at a time. (SQLite's BEGIN IMMEDIATE already makes the whole ingest exclusive.)
        db.session.execute(_LOCK_CUSTOMER, {"customer_id": customer.id})
    if customer.last_seen_at is None or abs(now - customer.last_seen_at) >= LAST_SEEN_RESOLUTION:
        customer.last_seen_at = now
    with db.session.no_autoflush:  # routing reads nothing the pending changes touch: flush them all once below
        conversation, is_new = route(customer, channel, inbound.thread, inbound, now, first_contact=first_contact)

    message = Message(
        conversation_id=conversation.id,
        customer_id=customer.id,
        channel=channel.kind,
        channel_id=channel.id,
        direction="in",
        kind=MESSAGE_KIND.get(inbound.kind, "message"),
        identity_id=identity.id,
        subject=inbound.subject,
        text=inbound.text,
        html=inbound.html,
        provider_id=inbound.provider_id,
        message_id_header=inbound.thread.message_id,
        in_reply_to=inbound.thread.in_reply_to,
        delivery_status="received",
        automated=inbound.automated,
        meta=dict(inbound.metadata),
        created_at=inbound.received_at or now,
        attachments=[],  # known empty until added below: serialising it must not query for it
    )
    message.raw_path = stored.raw
    pairs = zip(inbound.attachments, stored.attachments, strict=True)
    message.attachments.extend(files.stored_attachment(item, sha256) for item, sha256 in pairs)
    db.session.add(message)
    db.session.flush()

    message_changed(message, conversation)
    conversation_changed(conversation, created=is_new)
    return IngestResult(message, conversation, customer, created=True, conversation_created=is_new)


def route(
    customer: Customer,
    channel: Channel,
    hints: ThreadHints,
    inbound: InboundMessage,
    now: dt.datetime,
    *,
    first_contact: bool = False,
) -> tuple[Conversation, bool]:
    """Pick the conversation: thread hint → the customer's active one on any channel → a new one.

    ``first_contact``: the customer was created by this message, so it has no conversation to continue (and a
    thread hint pointing at someone else's is refused anyway): skip the lookups.
    """
    if first_contact:
        return _new_conversation(customer, channel, inbound, now), True
    reopen_after = now - dt.timedelta(days=current_app.config["REOPEN_WINDOW_DAYS"])
    conversation = _conversation_from_hints(customer, hints)
    if (
        conversation is not None
        and conversation.status == "resolved"
        and (conversation.resolved_at is None or conversation.resolved_at < reopen_after)
    ):
        conversation = None  # an old thread: a reply to it starts a fresh conversation
    if conversation is None:
        conversation = db.session.execute(_ACTIVE_CONVERSATION, {"customer_id": customer.id}).scalar()
    if conversation is None and not inbound.automated:
        conversation = db.session.execute(
            _RECENTLY_RESOLVED, {"customer_id": customer.id, "reopen_after": reopen_after}
        ).scalar()

    if conversation is None:
        return _new_conversation(customer, channel, inbound, now), True

    conversation.last_channel = channel.kind
    conversation.last_message_at = now
    conversation.last_activity_at = now
    if not inbound.automated and conversation.status != "open":
        # The customer wrote again: wake a snoozed conversation, reopen a resolved one, end "pending".
        conversation.status = "open"
        conversation.snoozed_until = None
        conversation.resolved_at = None
    return conversation, False


def _new_conversation(customer: Customer, channel: Channel, inbound: InboundMessage, now: dt.datetime) -> Conversation:
    conversation = Conversation(
        customer=customer,
        status="open",
        team_id=channel.team_id,
        channel_id=channel.id,
        subject=(inbound.subject or None) and inbound.subject[:998],
        origin_channel=channel.kind,
        last_channel=channel.kind,
        created_at=now,
        last_activity_at=now,
        last_message_at=now,
    )
    db.session.add(conversation)
    db.session.flush()
    conversation.number = conversation.id
    return conversation


def _conversation_from_hints(customer: Customer, hints: ThreadHints) -> Conversation | None:
    """Resolve explicit thread hints, refusing any that point into another customer's conversation."""
    candidates: list[Conversation | None] = []
    if hints.reply_token:
        conversation_id = conversation_id_for_token(hints.reply_token)
        if conversation_id is not None:
            candidates.append(db.session.get(Conversation, conversation_id))
    message_ids = [mid for mid in [hints.in_reply_to, *reversed(hints.references)] if mid]
    if message_ids:
        candidates.append(
            db.session.scalar(
                select(Conversation)
                .join(Message, Message.conversation_id == Conversation.id)
                # Only the sender's own threads: a reference to someone else's message (a reply-all) must
                # not hide the reference to theirs.
                .where(Message.message_id_header.in_(message_ids), Conversation.customer_id == customer.id)
                .order_by(Message.id.desc())
                .limit(1)
            )
        )
    if hints.conversation_number is not None:
        candidates.append(
            db.session.scalar(select(Conversation).where(Conversation.number == hints.conversation_number))
        )
    for candidate in candidates:
        # No hijacking: a hint only counts when the sender is that conversation's customer.
        if candidate is not None and candidate.customer_id == customer.id:
            return candidate
    return None
