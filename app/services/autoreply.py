"""Automatic replies: an email channel can acknowledge each new conversation, always or outside its hours.

Configured per channel in ``settings.auto_reply`` (checked by ``app.services.channels.check_settings``)::

    {"text": "Thanks, {{ customer.first_name }}! We answer within a day. Your case is #{{ conversation.number }}.",
     "when": "always"}            # or "outside_hours": only while the channel's business hours say closed

The reply goes out through the outbox like an agent's, threaded to the customer's mail and marked
``Auto-Submitted: auto-replied`` (RFC 3834). It is never sent to automated mail (the loop guard: auto-replies,
bulk mail, bounces, mailer daemons), never for a message that continues a conversation, and at most once a day
to the same customer, so two auto-responders that do not mark their mail cannot keep each other talking.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import bindparam, select

from app.extensions import db
from app.models import Channel, Message
from app.services.canned import fill_placeholders
from app.services.errors import ValidationFailed
from app.services.hours import is_open
from app.services.ingest import IngestResult
from app.services.reply import reply

log = logging.getLogger(__name__)

ONCE_PER_CUSTOMER = dt.timedelta(hours=24)
_SETTINGS = select(Channel.settings, Channel.business_hours).where(Channel.id == bindparam("channel_id"))


def auto_reply(result: IngestResult, channel: Channel, *, automated: bool, now: dt.datetime) -> Message | None:
    """Queue the channel's automatic reply to the message ingest just stored, when one is due; else None.

    Runs in ingest's transaction, left open for the caller to commit: the reply is queued exactly when the
    message it answers is stored.
    """
    if automated or not result.conversation_created:
        return None
    # The settings as they are now (``channel`` may be a cached snapshot, seconds old), in one light query.
    settings, business_hours = db.session.execute(_SETTINGS, {"channel_id": channel.id}).one()
    setting = (settings or {}).get("auto_reply")
    if not setting:
        return None
    if setting.get("when") == "outside_hours" and is_open(business_hours, now):
        return None
    customer = result.customer
    answered_lately = db.session.scalar(
        select(Message.id)
        .where(
            Message.customer_id == customer.id,
            Message.direction == "out",
            Message.automated.is_(True),
            Message.created_at >= now - ONCE_PER_CUSTOMER,
        )
        .limit(1)
    )
    if answered_lately is not None:
        return None
    name = (customer.name or "").strip()
    text = fill_placeholders(
        setting["text"],
        {
            "customer.name": name,
            "customer.first_name": name.split()[0] if name else "",
            "conversation.number": str(result.conversation.number or result.conversation.id),
        },
    )
    try:
        return reply(result.conversation.id, None, text, channel=channel.kind, automated=True, commit=False)
    except ValidationFailed as exc:  # e.g. the customer opted out: the mail is stored all the same
        log.info("no auto-reply for conversation %s: %s", result.conversation.id, exc)
        return None
