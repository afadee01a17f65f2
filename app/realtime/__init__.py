"""Real-time: Socket.IO namespaces and the one place that emits events to clients."""

from __future__ import annotations

from flask import Flask

from app.events import domain_event
from app.extensions import socketio
from app.realtime.emitter import emit_event


def init_app(app: Flask) -> None:
    from app.realtime.agent import AgentNamespace
    from app.realtime.widget import WidgetNamespace

    socketio.on_namespace(AgentNamespace("/agent"))
    socketio.on_namespace(WidgetNamespace("/widget"))
    # Subscribed once per process, whatever number of apps the tests create.
    domain_event.connect(_forward, weak=False)


def _forward(_sender: object, event: object) -> None:
    emit_event(event)  # type: ignore[arg-type]
