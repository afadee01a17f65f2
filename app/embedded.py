"""Embedded mode: the outbox worker and the SMTP listener run inside the one web process."""

from __future__ import annotations

from flask import Flask


def start_background_services(app: Flask) -> list[object]:
    """Start what embedded mode runs beside the web server; return handles with a ``stop()`` method."""
    handles: list[object] = []
    if app.config["EMBEDDED_WORKER"]:
        from app.worker import Worker

        handles.append(Worker(app).start())
    if app.config["EMBEDDED_SMTP"]:
        from connectors.email.server import start_smtp_server

        handles.append(start_smtp_server(app))
    return handles
