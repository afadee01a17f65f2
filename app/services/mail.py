"""Email-specific domain operations: which mailbox an address reaches, and bounces of mail we sent.

Routing, threading and storage of inbound mail are ingest's (``app.services.ingest``): the email connector
hands it the reply token, In-Reply-To/References and the ``[#number]`` of the subject as thread hints.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import func, insert, select

from app.events import INBOUND_MAIL_FAILED, MAIL_SPOOLED, Event, publish
from app.extensions import db
from app.models import AuditLog, Channel, InboundMail, Message, utcnow
from app.models.inbound_mail import SPOOL_STATUSES
from app.services import attachments as files
from app.services.errors import NotFound
from app.services.notify import delivery_changed

# Mail servers look up every recipient of every message; the list of mailboxes changes rarely.
ADDRESS_CACHE_SECONDS = 5.0
# But a refusal is final for the sender (550: the mail bounces), so an address missing from a list older than
# this is looked up again first: a mailbox created a moment ago gets its mail, and mail to unknown addresses
# (spam, mostly) still costs at most one query a second.
UNKNOWN_RECHECK_SECONDS = 1.0


# Every received mail runs this: built once (building a statement costs more than SQLite takes to run it), and
# on the table, not the entity (the ORM's bulk-insert path doubled what a spool costs).
_SPOOL = insert(InboundMail.__table__).returning(InboundMail.__table__.c.id)


def spool_mail(raw: bytes, mail_from: str | None, recipients: list[str]) -> int:
    """Keep a mail that was just received (raw source on disk, a queued spool row), commit, return its id.

    Once this returns the mail is safe, and the SMTP server may answer 250; the worker parses and ingests it.
    """
    now = utcnow()
    values = {
        "received_at": now,
        "mail_from": mail_from,
        "recipients": recipients,
        "raw_sha256": files.store_bytes(raw),
        "size": len(raw),
        "status": "queued",
        "attempts": 0,
        "next_attempt_at": now,
    }
    inbound_mail_id = int(db.session.execute(_SPOOL, values).scalar_one())
    publish(db.session, Event(MAIL_SPOOLED, {"inbound_mail_id": inbound_mail_id}, all_agents=False, private=True))
    db.session.commit()
    return inbound_mail_id


def list_spooled_mail(status: str | None = None, *, limit: int = 50, before_id: int | None = None) -> list[InboundMail]:
    """Spooled mail, newest first (``status`` to filter; ``before_id`` for the next page)."""
    query = select(InboundMail).order_by(InboundMail.id.desc()).limit(limit)
    if status:
        query = query.where(InboundMail.status == status)
    if before_id is not None:
        query = query.where(InboundMail.id < before_id)
    return list(db.session.scalars(query))


def get_spooled_mail(inbound_mail_id: int) -> InboundMail:
    row = db.session.get(InboundMail, inbound_mail_id)
    if row is None:
        raise NotFound(f"spooled mail {inbound_mail_id} not found")
    return row


def spool_counts() -> dict[str, int]:
    """How many spooled mails are in each status (every status, zero included).

    A growing ``queued`` count means no worker is taking mail; ``failed`` mail waits for an admin's retry.
    """
    counts = dict(db.session.execute(select(InboundMail.status, func.count()).group_by(InboundMail.status)).all())
    return {status: int(counts.get(status, 0)) for status in SPOOL_STATUSES}


def failed_mail_changed() -> None:
    """Queue inbound_mail.failed for admins with the new number of failed mails (sent when the session commits)."""
    failed = db.session.scalar(select(func.count()).select_from(InboundMail).where(InboundMail.status == "failed"))
    publish(
        db.session,
        Event(INBOUND_MAIL_FAILED, {"failed": int(failed or 0)}, all_agents=False, min_role="admin", private=True),
    )


def retry_spooled_mail(inbound_mail_ids: list[int] | None = None, *, actor_id: int | None = None) -> list[int]:
    """Queue failed spooled mail (these ids, or all failed) for the worker again; return the ids queued."""
    query = select(InboundMail).where(InboundMail.status == "failed")
    if inbound_mail_ids is not None:
        query = query.where(InboundMail.id.in_(inbound_mail_ids))
    rows = db.session.scalars(query).all()
    now = utcnow()
    for row in rows:
        row.status = "queued"
        row.attempts = 0
        row.next_attempt_at = now
        db.session.add(
            AuditLog(actor_id=actor_id, action="inbound_mail.retried", target_type="inbound_mail", target_id=row.id)
        )
    if rows:
        publish(db.session, Event(MAIL_SPOOLED, {"inbound_mail_id": rows[0].id}, all_agents=False, private=True))
        failed_mail_changed()
    db.session.commit()
    return [row.id for row in rows]


def split_plus(address: str) -> tuple[str, str | None]:
    """Split ``support+token@example.com`` into (``support@example.com``, ``token``), lower-cased."""
    local, _, domain = address.strip().strip("<>").lower().rpartition("@")
    base, plus, token = local.partition("+")
    return f"{base}@{domain}", (token or None) if plus else None


class MailboxDirectory:
    """The enabled email channels by address, cached for a few seconds.

    The cached Channel rows are detached snapshots: ingest reads only their id, kind and team.
    """

    def __init__(self, ttl: float = ADDRESS_CACHE_SECONDS, recheck_unknown: float = UNKNOWN_RECHECK_SECONDS) -> None:
        self.ttl = ttl
        self.recheck_unknown = recheck_unknown
        self._lock = threading.Lock()
        self._loaded_at = float("-inf")
        self._channels: dict[str, Channel] = {}

    def channels(self, max_age: float | None = None) -> dict[str, Channel]:
        """Return {address: channel} of every enabled email channel, read again when the list is older than
        ``max_age`` seconds (the cache's ttl unless given)."""
        with self._lock:
            if time.monotonic() - self._loaded_at > (self.ttl if max_age is None else max_age):
                rows = db.session.scalars(
                    select(Channel).where(
                        Channel.kind == "email", Channel.enabled.is_(True), Channel.address.is_not(None)
                    )
                ).all()
                for channel in rows:
                    db.session.expunge(channel)
                self._channels = {str(channel.address).lower(): channel for channel in rows}
                self._loaded_at = time.monotonic()
            return dict(self._channels)

    def lookup(self, address: str) -> tuple[Channel, str | None] | None:
        """Return (channel, plus token) for a recipient we accept mail for, else None."""
        base, token = split_plus(address)
        channel = self.channels().get(base) or self.channels(max_age=self.recheck_unknown).get(base)
        return None if channel is None else (channel, token)

    def fresh_accepts(self, address: str) -> bool | None:
        """Whether we accept mail for ``address``, from the cache alone; None when the database must say: the
        list is stale, or it lacks the address and is older than ``recheck_unknown``.

        Lets the SMTP server answer RCPT without a thread hop or a database session most of the time.
        """
        with self._lock:
            age = time.monotonic() - self._loaded_at
            if age > self.ttl:
                return None
            if split_plus(address)[0] in self._channels:
                return True
            return None if age > self.recheck_unknown else False

    def forget(self) -> None:
        with self._lock:
            self._loaded_at = float("-inf")


def find_sent_message(message_ids: list[str]) -> Message | None:
    """Return the outbound email whose Message-ID is one of ``message_ids`` (the newest), else None."""
    if not message_ids:
        return None
    return db.session.scalar(
        select(Message)
        .where(Message.direction == "out", Message.channel == "email", Message.message_id_header.in_(message_ids))
        .order_by(Message.id.desc())
        .limit(1)
    )


def record_bounce(
    message_ids: list[str],
    *,
    action: str,
    reason: str,
    status: str | None = None,
    recipients: list[str] | None = None,
    raw: bytes | None = None,
) -> Message | None:
    """Apply a delivery report to the outbound email it reports on; return that message, or None.

    A failure marks the message failed with the reason the agent sees; a delay or success is noted in
    its metadata. The report opens no conversation.
    """
    message = find_sent_message(message_ids)
    if message is None:
        db.session.rollback()
        return None
    report: dict[str, Any] = {
        "action": action,
        "reason": reason,
        "status": status,
        "recipients": recipients or [],
        "received_at": utcnow().isoformat(),
    }
    if raw is not None:
        report["raw_sha256"] = files.store_bytes(raw)
    message.meta = {**(message.meta or {}), "bounce": report}
    if action == "failed":
        message.delivery_status = "failed"
        message.error = f"Bounced: {reason}"[:2000]
        message.next_attempt_at = None
    delivery_changed(message)
    db.session.commit()
    return message
