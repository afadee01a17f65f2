"""Twilio: SMS/MMS and phone calls. Webhooks in, TwiML out, the REST API for replies and click-to-call.

Pure modules: ``parsing`` (webhook params → InboundMessage and events), ``signature`` (X-Twilio-Signature),
``twiml`` (voice responses), ``segments`` (GSM-7/UCS-2). ``rest`` talks to Twilio's API; ``web`` is the
webhook blueprint; ``media`` is the worker job that downloads MMS media.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from connectors.base import register

_subscribed = False


def _sms_connector(config: dict[str, Any]) -> Any:
    from connectors.twilio.rest import TwilioSettings, TwilioSmsConnector

    return TwilioSmsConnector(TwilioSettings.from_config(config))


def _voice_connector(config: dict[str, Any]) -> Any:
    from connectors.twilio.rest import TwilioSettings, TwilioVoiceConnector

    return TwilioVoiceConnector(TwilioSettings.from_config(config))


def _on_event(_sender: object, event: Any) -> None:
    """Remember SMS the outbox just marked sent, so an early delivery receipt can be applied after it."""
    from app.events import MESSAGE_UPDATED

    if event.name != MESSAGE_UPDATED:
        return
    message = event.payload.get("message") or {}
    if (
        message.get("channel") == "sms"
        and message.get("direction") == "out"
        and message.get("delivery_status") == "sent"
    ):
        from app.services.sms import note_sent

        note_sent(int(message["id"]))


def _reconcile_receipts() -> None:
    from app.services.sms import reconcile_early_receipts

    reconcile_early_receipts()


def _fetch_media() -> None:
    from connectors.twilio.media import fetch_due_media

    fetch_due_media()


def init_app(app: Flask) -> None:
    """Register the sms and voice connectors, the webhooks and the worker job."""
    global _subscribed
    from app.events import domain_event
    from app.worker import schedule
    from connectors.twilio.web import bp

    register("sms", _sms_connector)
    register("voice", _voice_connector)
    app.register_blueprint(bp)
    every = float(app.config.get("TWILIO_JOB_SECONDS", 2.0))
    schedule("twilio-sms-receipts", every, _reconcile_receipts)
    schedule("twilio-mms-media", every, _fetch_media)
    if not _subscribed:  # once per process, however many apps the tests create
        domain_event.connect(_on_event, weak=False)
        _subscribed = True
