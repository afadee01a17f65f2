"""Scheduled jobs of the topics feature, called by the worker loop (app.worker.register_jobs).

- ``refresh_reports``: fold changed days into the report statistics (every REPORTS_REFRESH_SECONDS, 60).
- ``evaluate_spikes``: run the spike detector and store/publish alerts (every SPIKE_EVERY_MINUTES, 10; see
  ``spike_interval_seconds``).
- ``retrain_suggestions``: retrain the topic suggester when tags changed (every SUGGESTIONS_RETRAIN_SECONDS).

Each runs in an app context; the worker removes the session afterwards.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from app.extensions import db
from app.models import ConversationTopic, utcnow
from app.services import reports, spikes, suggest

log = logging.getLogger(__name__)

_last_fingerprint: dict[str, object] = {}


def refresh_reports(now: dt.datetime | None = None) -> reports.RefreshResult:
    """Rebuild the report statistics of the days that changed."""
    result = reports.refresh_stats(now or utcnow())
    if result.full:
        log.info("report statistics rebuilt in full: %d days", result.days)
    return result


def spike_interval_seconds(config: Mapping[str, Any]) -> float:
    """How often to run ``evaluate_spikes``: SPIKE_EVERY_MINUTES, or the detector's default (10), in seconds."""
    return 60.0 * spikes.SpikeSettings.from_config(config).every_minutes


def evaluate_spikes(now: dt.datetime | None = None) -> list[int]:
    """Evaluate every topic for a spike in the windows ending now; return the ids of alerts opened."""
    now = now or utcnow()
    settings = spikes.SpikeSettings.from_config(current_app.config)
    opened = spikes.evaluate_spikes(db.session, now, settings, reports.org_timezone())
    if opened:
        log.info("spike alerts opened: %s", opened)
    return opened


def retrain_suggestions(*, force: bool = False) -> suggest.TrainResult | None:
    """Retrain the topic suggester if the tags changed since the last training (always with ``force``)."""
    fingerprint = tuple(
        db.session.execute(
            select(func.count(), func.max(ConversationTopic.created_at)).select_from(ConversationTopic)
        ).one()
    )
    db.session.commit()
    if not force and _last_fingerprint.get("tags") == fingerprint and suggest.load_model() is not None:
        return None
    result = suggest.train()
    if result.trained or not force:
        _last_fingerprint["tags"] = fingerprint
    if not result.trained:
        log.info("topic suggester not trained: %s", result.reason)
    return result
