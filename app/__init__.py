"""Switchboard: one inbox for every channel, one timeline for every customer."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from flask import Flask

from app.config import load_config


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the application; tests pass their own settings in ``config``."""
    app = Flask(__name__, instance_path=str(Path(__file__).resolve().parent.parent / "instance"))
    app.config.from_mapping(load_config())
    if config:
        app.config.update(config)
    Path(app.config["INSTANCE_DIR"]).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from app.extensions import db, limiter, login_manager, socketio

    db.init_app(app)
    login_manager.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] or "memory://")
    limiter.init_app(app)
    socketio.init_app(
        app,
        async_mode="threading",
        message_queue=app.config["REDIS_URL"],
        cors_allowed_origins=[],  # same origin only; the widget namespace checks its own allow-list
        manage_session=False,  # share Flask's signed-cookie session with HTTP routes
        max_http_buffer_size=app.config["MAX_CONTENT_LENGTH"],
    )

    # Blueprints, namespaces and connectors are imported here so none is ever silently left unregistered.
    from app import api, cli, realtime

    api.init_app(app)
    realtime.init_app(app)
    cli.init_app(app)

    import connectors

    for name in connectors.INSTALLED:
        importlib.import_module(name).init_app(app)
    return app
