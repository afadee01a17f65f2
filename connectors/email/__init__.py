"""Email: an aiosmtpd server for inbound mail, MIME parsing, and outbound mail through an SMTP relay.

Pure modules: ``parse`` (raw mail → InboundMessage), ``charsets``, ``mime``, ``quotes`` (reply folding),
``loopguard`` (automatic mail), ``bounce`` (delivery reports), ``compose`` (MIME for replies); HTML
sanitising lives in ``connectors.html``, shared with the other channels. ``relay`` sends through
SMTP_RELAY_URL; ``server`` is the SMTP listener (``start_smtp_server(app)``), run by ``flask smtp-server`` or
in-process in embedded mode.
"""

from __future__ import annotations

from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from connectors.base import Connector, register


def _email_connector(config: dict[str, Any]) -> Connector:
    from connectors.email.relay import EmailConnector

    return EmailConnector(config)


@click.command("smtp-server")
@click.option("--listen", default=None, help="host:port to listen on (default: SMTP_LISTEN)")
@with_appcontext
def smtp_server_command(listen: str | None) -> None:
    """Receive mail for the email channels over SMTP until interrupted (a worker parses and stores it)."""
    import signal
    import threading

    from connectors.email.server import start_smtp_server

    server = start_smtp_server(current_app._get_current_object(), listen)  # type: ignore[attr-defined]
    click.echo(f"SMTP server listening on {server.hostname}:{server.port}")
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    stopping.wait()
    server.stop()


def init_app(app: Flask) -> None:
    """Register the email connector and the `smtp-server` command."""
    register("email", _email_connector)
    app.cli.add_command(smtp_server_command)
