"""Supervisor reports and spike alerts.

``GET /api/v1/reports/topics`` answers (times in the organisation's zone, ISO 8601 with offset)::

    {from, to, previous_from, interval, timezone, filters: {channel_ids, team_id},
     buckets: [start of each bucket],
     totals: {counts: [per bucket], total, previous_total, change},
     topics: [{id (null = untagged), name, parent_id, colour, archived, counts, total, previous_total, change}],
     movers: [{topic_id, name, parent_id, colour, total, previous_total, delta, change}]  (top 10 by |delta|),
     times: {overall, by_topic: [{topic_id, name, …}], by_channel: [{channel_id, name, kind, …}],
             by_agent: [{agent_id, name, …}]}  each with {conversations, first_response, resolution},
             and those {count, median_seconds, p90_seconds},
     alerts: [alert in the range], stats: {timezone, refreshed_at, rebuilding}}

``change`` is (total - previous) / previous, null when there was nothing before. Parent topics count their
subtopics' conversations, so a chart stacks either the top level or the leaves, not both.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from flask import Blueprint, Response, jsonify
from flask_login import current_user
from pydantic import Field
from sqlalchemy import and_, or_, select

from app.api.auth import role_required
from app.api.fields import DbId, Query
from app.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, page
from app.api.validation import documented, validate
from app.extensions import db
from app.models import Alert, Conversation, ConversationTopic, Topic, utcnow
from app.serializers import iso
from app.services import reports
from app.services.errors import NotFound
from app.services.spikes import alert_payload

bp = Blueprint("reports", __name__, url_prefix="/api/v1")

DEFAULT_SPAN = {"hour": dt.timedelta(days=2), "day": dt.timedelta(days=30), "week": dt.timedelta(weeks=12)}


class ReportQuery(Query):
    from_: str | None = Field(
        default=None, alias="from", max_length=40, description="a date (local midnight) or ISO datetime; inclusive"
    )
    to: str | None = Field(default=None, max_length=40, description="a date or ISO datetime; exclusive")
    interval: Literal["hour", "day", "week"] = "day"
    channel: str | None = Field(default=None, max_length=32, description="a channel id or kind (email, sms, …)")
    team: str | None = Field(default=None, pattern=r"^(none|\d{1,18})$", description="a team id, or none")
    format: Literal["json", "csv"] = "json"


class AlertQuery(Query):
    status: Literal["open", "closed", "all"] = "all"
    topic: DbId | None = None
    cursor: str | None = Field(default=None, max_length=500)
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


@bp.get("/reports/topics")
@role_required("supervisor")
@validate(query=ReportQuery)
@documented(summary="Conversations by topic over time, top movers, response and resolution times (JSON or CSV)")
def topics_report(query: ReportQuery) -> Any:
    """Report topic volume per hour/day/week in the organisation's time zone, with durations and alerts."""
    tz = reports.org_timezone()
    now = utcnow()
    end_default = reports.day_start(reports.local_day(now, tz) + dt.timedelta(days=1), tz)
    if query.interval == "hour":
        end_default = reports.hour_start(now, tz) + dt.timedelta(hours=1)
    end = reports.parse_bound(query.to, tz, default=end_default)
    start = reports.parse_bound(query.from_, tz, default=end - DEFAULT_SPAN[query.interval])
    team_id = None if query.team is None else (reports.NONE if query.team == "none" else int(query.team))
    report = reports.topic_report(
        reports.ReportQuery(
            start=start,
            end=end,
            interval=query.interval,
            channel_ids=reports.resolve_channel_filter(db.session, query.channel),
            team_id=team_id,
        )
    )
    if query.format == "csv":
        name = f"topics-{query.interval}-{report['from'][:10]}-{report['to'][:10]}.csv"
        return Response(
            reports.report_csv(report),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return jsonify(report)


@bp.get("/alerts")
@role_required("supervisor")
@validate(query=AlertQuery)
@documented(summary="Spike alerts, newest first")
def alerts(query: AlertQuery) -> Any:
    """List spike alerts, optionally only open or closed ones, or one topic's."""
    statement = select(Alert)
    if query.status != "all":
        statement = statement.where(Alert.status == query.status)
    if query.topic is not None:
        statement = statement.where(Alert.topic_id == query.topic)
    after = decode_cursor(query.cursor, dt.datetime, int)
    if after is not None:
        at, last_id = after
        statement = statement.where(or_(Alert.detected_at < at, and_(Alert.detected_at == at, Alert.id < last_id)))
    rows = list(
        db.session.scalars(statement.order_by(Alert.detected_at.desc(), Alert.id.desc()).limit(query.limit + 1))
    )
    next_key = None
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        next_key = (rows[-1].detected_at, rows[-1].id)
    return jsonify(page([alert_payload(db.session, alert) for alert in rows], next_key))


def _alert(alert_id: int) -> Alert:
    alert = db.session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    return alert


@bp.get("/alerts/<int:alert_id>")
@role_required("supervisor")
@documented(summary="One spike alert")
def alert_detail(alert_id: int) -> Any:
    """Show one alert."""
    return jsonify(alert_payload(db.session, _alert(alert_id)))


@bp.post("/alerts/<int:alert_id>/acknowledge")
@role_required("supervisor")
@documented(summary="Mark a spike alert as seen by the current supervisor")
def acknowledge(alert_id: int) -> Any:
    """Acknowledge an alert (idempotent: the first acknowledgement is kept)."""
    alert = _alert(alert_id)
    if alert.acknowledged_at is None:
        alert.acknowledged_at = utcnow()
        alert.acknowledged_by_id = current_user.id
        db.session.commit()
    return jsonify(alert_payload(db.session, alert))


@bp.get("/alerts/<int:alert_id>/conversations")
@role_required("supervisor")
@documented(summary="The conversations behind a spike alert: tagged with its topic during the episode")
def alert_conversations(alert_id: int) -> Any:
    """List the conversations tagged with the alert's topic (or its subtopics) while the episode ran."""
    alert = _alert(alert_id)
    until = alert.ended_at or utcnow()
    family = select(Topic.id).where(or_(Topic.id == alert.topic_id, Topic.parent_id == alert.topic_id))
    rows = db.session.execute(
        select(Conversation, ConversationTopic.created_at)
        .join(ConversationTopic, ConversationTopic.conversation_id == Conversation.id)
        .where(
            ConversationTopic.topic_id.in_(family),
            ConversationTopic.created_at >= alert.window_start,
            ConversationTopic.created_at <= until,
        )
        .order_by(ConversationTopic.created_at.desc(), Conversation.id.desc())
        .limit(MAX_LIMIT * 5)
    ).all()
    seen: set[int] = set()
    items = []
    for conversation, tagged_at in rows:
        if conversation.id in seen:
            continue
        seen.add(conversation.id)
        items.append(
            {
                "id": conversation.id,
                "number": conversation.number,
                "subject": conversation.subject,
                "status": conversation.status,
                "origin_channel": conversation.origin_channel,
                "created_at": iso(conversation.created_at),
                "tagged_at": iso(tagged_at),
            }
        )
    return jsonify(alert=alert_payload(db.session, alert), items=items, truncated=len(rows) >= MAX_LIMIT * 5)
