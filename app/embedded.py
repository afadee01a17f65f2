"""Embedded mode: the outbox worker and the SMTP listener run inside the one web process."""

from __future__ import annotations

import logging

from flask import Flask

log = logging.getLogger(__name__)


def start_background_services(app: Flask) -> list[object]:
    """Start what embedded mode runs beside the web server; return handles with a ``stop()`` method."""
    handles: list[object] = []
    if app.config["EMBEDDED_WORKER"]:
        from app.worker import Worker

        handles.append(Worker(app).start())
    if app.config["EMBEDDED_SMTP"]:
        try:
            from connectors.email.server import start_smtp_server
        except ModuleNotFoundError:  # TODO(lead): the email connector lands with issue 3
            log.warning("email connector not installed; SMTP listener not started")
        else:
            handles.append(start_smtp_server(app))
    return handles
