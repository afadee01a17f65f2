"""The JSON REST API under /api/v1, the health check and the OpenAPI document."""

from __future__ import annotations

import importlib

from flask import Flask

# Every module here exposes ``bp``; they are registered in this order.
MODULES: tuple[str, ...] = (
    "app.api.health",
    "app.api.openapi",
    "app.api.channels",
    "app.api.conversations",
    "app.api.customers",
    "app.api.admin",
    "app.api.topics",
    "app.api.reports",
    "app.api.attachments",
    "app.api.canned",
    "app.api.console",
    "app.api.widget",
    "app.api.forms",
    "app.api.sms",
    "app.api.calls",
    "app.api.inbound_mail",
)


def init_app(app: Flask) -> None:
    from app.api import auth, errors
    from app.api.fields import BoundedIntConverter

    app.url_map.converters["int"] = BoundedIntConverter  # an id past 64 bits matches no route: 404, not a 500
    errors.init_app(app)
    auth.init_app(app)
    for name in MODULES:
        app.register_blueprint(importlib.import_module(name).bp)
