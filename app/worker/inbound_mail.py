"""The inbound mail spool: claim spooled mail, parse and ingest it, record what became of it.

The SMTP server answered 250 once the raw mail was spooled (``app.services.mail.spool_mail``); this turns it
into a message. Rows are claimed in arrival order (a reply must not overtake the mail it answers) with a
lease, as the outbox does: if the process dies mid-way, the row becomes due again when the lease runs out,
and ingest's idempotency (the Message-ID is the provider id) makes the second pass store nothing twice. A
mail that fails for any reason but a deliberate rejection is retried with backoff, then kept as ``failed``
with its raw source, for an admin to retry after the fix (``flask mail-spool retry``, or the API).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import bindparam, delete, func, select, update

from app.extensions import db
from app.models import InboundMail, utcnow
from app.services import attachments as files
from app.services.mail import failed_mail_changed
from app.worker.outbox import backoff

log = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)
_RECEIVER_KEY = "switchboard.mail_receiver"
UNFINISHED = ("queued", "processing")


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed mail: what processing needs, read in the claiming transaction."""

    id: int
    attempts: int  # this one included
    raw_sha256: str
    mail_from: str | None
    recipients: list[str]


def claim_mail(limit: int = 20) -> list[Claimed]:
    """Mark up to ``limit`` due spooled mails as processing and return them, oldest first.

    A mail waits while an earlier one from the same sender is unfinished and not in this batch (waiting for a
    retry, or in another worker's hands): a reply must not overtake the mail it answers, or it would start a
    conversation of its own. Within a batch, mails are processed in arrival order.
    """
    now = utcnow()
    unfinished = InboundMail.status.in_(UNFINISHED)
    # The earliest mail of each sender that cannot be taken now: everything after it from that sender waits.
    held_back: dict[str | None, int] = dict(
        db.session.execute(
            select(InboundMail.mail_from, func.min(InboundMail.id))
            .where(unfinished, InboundMail.next_attempt_at > now)
            .group_by(InboundMail.mail_from)
        ).all()
    )
    due = db.session.execute(
        select(InboundMail.id, InboundMail.mail_from)
        .where(unfinished, InboundMail.next_attempt_at <= now)
        .order_by(InboundMail.id)
        .limit(limit * 4)
    ).all()
    # The conditions again: on PostgreSQL another worker may have claimed a row since it was read.
    lockable = select(InboundMail).where(
        InboundMail.id.in_([row.id for row in due]), unfinished, InboundMail.next_attempt_at <= now
    )
    if db.dialect == "postgresql":
        lockable = lockable.with_for_update(skip_locked=True)  # rows another worker is claiming stay theirs
    locked = {row.id: row for row in db.session.scalars(lockable)}
    claimed: list[InboundMail] = []
    for candidate in due:
        first_held = held_back.get(candidate.mail_from)
        if first_held is not None and first_held < candidate.id:
            continue
        row = locked.get(candidate.id)
        if row is None:  # being claimed by another worker: hold back this sender's later mail too
            held_back[candidate.mail_from] = min(candidate.id, first_held or candidate.id)
            continue
        claimed.append(row)
        if len(claimed) == limit:
            break
    for row in claimed:
        row.status = "processing"
        row.next_attempt_at = now + LEASE
        row.attempts += 1
    db.session.commit()
    return [Claimed(row.id, row.attempts, row.raw_sha256, row.mail_from, list(row.recipients)) for row in claimed]


_SPOOL_TABLE = InboundMail.__table__
# Every processed mail runs this; a Core statement built once (the ORM would load the row first).
_RECORD_OUTCOME = (
    update(_SPOOL_TABLE)
    .where(_SPOOL_TABLE.c.id == bindparam("row_id"))
    .values(
        status=bindparam("status"),
        outcome=bindparam("outcome"),
        message_id=bindparam("message_id"),
        next_attempt_at=bindparam("next_attempt_at"),
        processed_at=bindparam("processed_at"),
    )
)


def _receiver(app: Flask) -> Any:
    """The app's MailReceiver (one per app, so its mailbox cache is shared)."""
    from connectors.email.server import MailReceiver

    receiver = app.extensions.get(_RECEIVER_KEY)
    if receiver is None:
        receiver = app.extensions[_RECEIVER_KEY] = MailReceiver(app)
    return receiver


def process_mail(app: Flask, mail: Claimed) -> str:
    """Parse and ingest one claimed mail; record and return its new status."""
    config: dict[str, Any] = app.config
    max_attempts = int(config["MAIL_SPOOL_MAX_ATTEMPTS"])
    if mail.attempts > max_attempts:
        # Claimed again after its lease ran out on the last allowed attempt: that process died mid-way.
        row = db.session.get_one(InboundMail, mail.id)
        row.status, row.next_attempt_at = "failed", None
        row.outcome = f"gave up after {mail.attempts - 1} attempts (the last one never finished)"
        log.error("spooled mail %s: %s; kept for a retry", row.id, row.outcome)
        failed_mail_changed()
        db.session.commit()
        return row.status
    try:
        raw = files.read_bytes(mail.raw_sha256)
        outcome = _receiver(app).process(raw, mail.mail_from, mail.recipients)
    except Exception as exc:  # a parser bug or the database: keep the mail and try again later
        db.session.rollback()
        row = db.session.get_one(InboundMail, mail.id)
        row.outcome = f"{type(exc).__name__}: {exc}"[:2000]
        if row.attempts < max_attempts:
            row.status = "queued"
            row.next_attempt_at = utcnow() + backoff(
                row.attempts, config["OUTBOX_BACKOFF_BASE_SECONDS"], config["OUTBOX_BACKOFF_MAX_SECONDS"]
            )
            log.warning("spooled mail %s: retry %d later", row.id, row.attempts, exc_info=True)
        else:
            row.status = "failed"
            row.next_attempt_at = None
            log.exception("spooled mail %s failed after %d attempts; kept for a retry", row.id, row.attempts)
            failed_mail_changed()
        db.session.commit()
        return row.status
    # In the transaction that stored the message (still open): one commit makes both durable.
    db.session.execute(
        _RECORD_OUTCOME,
        {
            "row_id": mail.id,
            "status": outcome.status,
            "outcome": outcome.detail,
            "message_id": outcome.message_id,
            "next_attempt_at": None,
            "processed_at": utcnow(),
        },
    )
    db.session.commit()
    return outcome.status


def process_spooled_mail(app: Flask, limit: int = 20) -> int:
    """Claim and process one batch of spooled mail; return how many were handled."""
    claimed = claim_mail(limit)
    for mail in claimed:
        try:
            process_mail(app, mail)
        except Exception:  # recording the outcome failed (the database went away): the lease brings it back
            db.session.rollback()
            log.exception("processing spooled mail %s failed", mail.id)
        finally:
            db.session.remove()
    return len(claimed)


def prune_mail_spool(retention_days: float, now: dt.datetime | None = None) -> int:
    """Forget processed spool rows older than ``retention_days`` (a stored message keeps its raw source)."""
    cutoff = (now or utcnow()) - dt.timedelta(days=retention_days)
    result = db.session.execute(
        delete(InboundMail).where(InboundMail.status.in_(("stored", "rejected")), InboundMail.received_at < cutoff)
    )
    db.session.commit()
    return int(result.rowcount or 0)
