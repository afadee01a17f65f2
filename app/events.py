"""The in-process event bus. Services publish; ``app.realtime`` subscribes and is the only code that emits.

``publish`` queues an event on the session; it is delivered only after that session commits, and dropped if
it rolls back, so no screen ever shows something the database does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from blinker import Namespace
from sqlalchemy import event
from sqlalchemy.orm import Session, scoped_session

MESSAGE_CREATED = "message.created"
MESSAGE_UPDATED = "message.updated"
MESSAGES_READ = "messages.read"
CONVERSATION_CREATED = "conversation.created"
CONVERSATION_UPDATED = "conversation.updated"
CUSTOMER_UPDATED = "customer.updated"
CUSTOMER_MERGED = "customer.merged"
TYPING = "typing"
PRESENCE_UPDATED = "presence.updated"
ALERT_CREATED = "alert.created"
WRAPUP_REQUESTED = "wrapup.requested"
VIEWING = "viewing"
# A caller joined or left the phone queue, or an agent started answering them (payload: call_id, waiting, entry).
CALL_QUEUE_UPDATED = "call_queue.updated"
# Admins only: the number of spooled mails that failed and wait for a retry changed (payload: failed).
INBOUND_MAIL_FAILED = "inbound_mail.failed"
# Internal, for no screen: mail was spooled and the worker should parse it now (payload: inbound_mail_id).
MAIL_SPOOLED = "mail.spooled"

_signals = Namespace()
domain_event = _signals.signal("domain-event")

_PENDING_KEY = "switchboard.pending_events"


@dataclass(frozen=True, slots=True)
class Event:
    """What happened and to whom it matters; ``app.realtime`` turns the audience into rooms."""

    name: str
    payload: dict[str, Any]
    conversation_id: int | None = None
    team_id: int | None = None
    user_ids: tuple[int, ...] = ()
    # Broadcast to every agent (the unified inbox) unless restricted.
    all_agents: bool = True
    # Restrict to staff with at least this role (e.g. "supervisor" for alerts); implies not all_agents.
    min_role: str | None = None
    # Private notes and internal events never reach a customer-facing room.
    private: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def publish(session: Session | scoped_session[Session], event_: Event) -> None:
    """Queue ``event_`` to be sent once ``session`` commits."""
    if isinstance(session, scoped_session):
        session = session()
    if not session.in_transaction():
        session.begin()  # tie it to a transaction, so a close() without a commit drops it too
    session.info.setdefault(_PENDING_KEY, []).append(event_)


def publish_now(event_: Event) -> None:
    """Send an ephemeral event that has no database state behind it (typing, presence)."""
    domain_event.send(None, event=event_)


@event.listens_for(Session, "after_commit")
def _deliver_after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    for item in pending or ():
        domain_event.send(None, event=item)


@event.listens_for(Session, "after_transaction_end")
def _drop_unless_committed(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the outermost transaction ended; after_commit already took its events
        session.info.pop(_PENDING_KEY, None)


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, _previous_transaction: Any) -> None:
    if not session.in_transaction():
        session.info.pop(_PENDING_KEY, None)
