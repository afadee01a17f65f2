"""The background worker: the outbox, the inbound mail spool, plus scheduled jobs, in a thread (embedded) or
its own process.

Jobs are registered with ``schedule(name, every_seconds, func)``; each runs in an app context with its own
session. The worker wakes immediately when a reply is queued or a mail is spooled in this process, and polls
for the rest (other processes' replies and mail).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask

from app.events import MAIL_SPOOLED, MESSAGE_CREATED, Event, domain_event
from app.extensions import db
from app.models import utcnow

log = logging.getLogger(__name__)


@dataclass
class Job:
    name: str
    every: float
    func: Callable[[], object]
    next_run: float = 0.0


_JOBS: dict[str, Job] = {}


def schedule(name: str, every_seconds: float, func: Callable[[], object]) -> None:
    """Run ``func`` every ``every_seconds`` in the worker (registering the same name again replaces it)."""
    _JOBS[name] = Job(name, every_seconds, func)


def register_jobs(app: Flask) -> list[str]:
    """Schedule the periodic jobs; return their names."""
    from app.services.conversations import wake_snoozed_conversations
    from app.worker.inbound_mail import prune_mail_spool
    from app.worker.jobs import evaluate_spikes, refresh_reports, retrain_suggestions, spike_interval_seconds

    config = app.config
    if db.dialect == "sqlite":
        schedule("sqlite-checkpoint", float(config.get("SQLITE_CHECKPOINT_SECONDS", 5)), db.checkpoint)
    schedule(
        "prune-mail-spool",
        3600,
        lambda: prune_mail_spool(float(config.get("MAIL_SPOOL_RETENTION_DAYS", 30))),
    )
    schedule("wake-snoozed", float(config.get("SNOOZE_WAKE_SECONDS", 30)), lambda: wake_snoozed_conversations(utcnow()))
    schedule("refresh-reports", float(config.get("REPORTS_REFRESH_SECONDS", 60)), refresh_reports)
    schedule("evaluate-spikes", spike_interval_seconds(config), evaluate_spikes)
    schedule("retrain-suggestions", float(config.get("SUGGESTIONS_RETRAIN_SECONDS", 3600)), retrain_suggestions)
    return list(_JOBS)


class Worker:
    """Run the outbox and the scheduled jobs until stopped."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.jobs = register_jobs(app)
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        domain_event.connect(self._on_event, weak=False)

    def _on_event(self, _sender: object, event: Event) -> None:
        if event.name == MAIL_SPOOLED or (
            event.name == MESSAGE_CREATED and event.payload.get("message", {}).get("delivery_status") == "queued"
        ):
            self.wake.set()

    def run_once(self) -> int:
        """Process one batch of spooled mail and of due outbox messages, and run due jobs; return how many
        mails and messages were handled."""
        from app.worker.inbound_mail import process_spooled_mail
        from app.worker.outbox import process_due

        handled = 0
        with self.app.app_context():
            for step in (process_spooled_mail, process_due):
                try:  # one failing step (the database briefly away) must not hold up the others
                    handled += step(self.app)
                except Exception:
                    log.exception("worker step %s failed", step.__name__)
                finally:
                    db.session.remove()
            now = time.monotonic()
            for job in list(_JOBS.values()):
                if now < job.next_run:
                    continue
                job.next_run = now + job.every
                try:
                    job.func()
                except Exception:
                    log.exception("job %s failed", job.name)
                finally:
                    db.session.remove()
        return handled

    def run_forever(self) -> None:
        log.info("worker started")
        poll = float(self.app.config["OUTBOX_POLL_SECONDS"])
        while not self.stopping.is_set():
            try:
                handled = self.run_once()
            except Exception:  # the database may be briefly unreachable: keep going
                log.exception("worker iteration failed")
                handled = 0
            if handled == 0:
                self.wake.wait(poll)
                self.wake.clear()
        log.info("worker stopped")

    def start(self) -> Worker:
        self.thread = threading.Thread(target=self.run_forever, name="switchboard-worker", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self.stopping.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout)
        domain_event.disconnect(self._on_event)
