"""Outbound Twilio: SMS through the Messages API, click-to-call and queue answering through the Calls API,
MMS media download.

All requests go through the real twilio ``Client``. When TWILIO_API_BASE is set (a local stand-in in tests, a
recording proxy in staging) a small HttpClient rewrites ``https://*.twilio.com`` to that base, so the exact
request Twilio would receive can be observed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from connectors.base import OutboundMessage, PermanentSendError, RetryableSendError, SendError
from connectors.twilio.parsing import describe_error
from connectors.twilio.twiml import VoiceSettings, WebhookUrls, answer_queue

log = logging.getLogger(__name__)

MAX_SMS_CHARS = 1600  # Twilio refuses longer bodies (error 21617)
REQUEST_TIMEOUT = 15.0


class RebasedHttpClient(TwilioHttpClient):
    """The twilio HTTP client, sending what it would send to ``*.twilio.com`` to ``base`` instead."""

    def __init__(self, base: str, timeout: float = REQUEST_TIMEOUT) -> None:
        super().__init__(timeout=timeout)
        self.base = urlsplit(base.rstrip("/"))

    def rebase(self, url: str) -> str:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host != "twilio.com" and not host.endswith(".twilio.com"):
            return url
        return urlunsplit(
            (self.base.scheme, self.base.netloc, self.base.path + parts.path, parts.query, parts.fragment)
        )

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        return super().request(method, self.rebase(url), *args, **kwargs)


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    """What the outbound side needs from the app configuration."""

    account_sid: str
    auth_token: str
    public_url: str
    api_base: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TwilioSettings:
        return cls(
            account_sid=str(config.get("TWILIO_ACCOUNT_SID") or ""),
            auth_token=str(config.get("TWILIO_AUTH_TOKEN") or ""),
            public_url=str(config.get("PUBLIC_URL") or "http://127.0.0.1:5000").rstrip("/"),
            api_base=config.get("TWILIO_API_BASE") or None,
        )


_clients: dict[tuple[str, str, str | None], Client] = {}
_clients_lock = threading.Lock()


def twilio_client(settings: TwilioSettings) -> Client:
    """Return a shared Client for these credentials (its HTTP session pools connections)."""
    if not settings.account_sid or not settings.auth_token:
        raise PermanentSendError("Twilio is not configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    key = (settings.account_sid, settings.auth_token, settings.api_base)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            http_client = (
                RebasedHttpClient(settings.api_base) if settings.api_base else TwilioHttpClient(timeout=REQUEST_TIMEOUT)
            )
            # environment={} keeps TWILIO_EDGE/TWILIO_REGION from the process out of the request URLs.
            client = Client(settings.account_sid, settings.auth_token, http_client=http_client, environment={})
            _clients[key] = client
        return client


def send_error(exc: Exception) -> SendError:
    """Classify a failure: throttling, Twilio outages and network trouble retry; refusals are permanent."""
    if isinstance(exc, TwilioRestException):
        text = str(exc.msg or "").removeprefix("Unable to create record: ")
        detail = (
            describe_error(exc.code, text) if exc.code else f"Twilio refused the request (HTTP {exc.status}): {text}"
        )
        if exc.status == 429 or exc.status >= 500 or exc.code == 20429:
            return RetryableSendError(detail or "Twilio is unavailable")
        return PermanentSendError(detail or f"Twilio refused the request (HTTP {exc.status})")
    if isinstance(exc, requests.RequestException):
        return RetryableSendError(f"cannot reach Twilio: {exc.__class__.__name__}: {exc}")
    if isinstance(exc, TwilioException):
        return PermanentSendError(f"Twilio client error: {exc}")
    return RetryableSendError(f"unexpected error talking to Twilio: {exc}")


class TwilioSmsConnector:
    """Send outbox messages on an SMS channel through Twilio's Messages API."""

    kind = "sms"

    def __init__(self, settings: TwilioSettings) -> None:
        self.settings = settings
        self.urls = WebhookUrls(settings.public_url)

    def send(self, message: OutboundMessage) -> str:
        """Create the Twilio message and return its sid; raise SendError (retryable or not)."""
        if message.recipient.kind != "phone":
            raise PermanentSendError(f"SMS needs a phone number, not a {message.recipient.kind} identity")
        if message.attachments:
            raise PermanentSendError("attachments cannot be sent by SMS; send them by email instead")
        text = message.text.strip()
        if not text:
            raise PermanentSendError("an SMS needs some text")
        if len(text) > MAX_SMS_CHARS:
            raise PermanentSendError(f"an SMS can hold at most {MAX_SMS_CHARS} characters, this one has {len(text)}")
        service_sid = (message.settings or {}).get("messaging_service_sid")
        sender: dict[str, Any] = (
            {"messaging_service_sid": service_sid} if service_sid else {"from_": message.channel_address}
        )
        client = twilio_client(self.settings)
        try:
            created = client.messages.create(
                to=message.recipient.value,
                body=text,
                status_callback=self.urls.sms_status(message.message_id),
                **sender,
            )
        except Exception as exc:
            raise send_error(exc) from exc
        if not created.sid:
            raise RetryableSendError("Twilio accepted the message but returned no sid")
        return str(created.sid)


class TwilioVoiceConnector:
    """The voice channel: it cannot carry text replies, but it places click-to-call and queue-answering calls."""

    kind = "voice"

    def __init__(self, settings: TwilioSettings) -> None:
        self.settings = settings
        self.urls = WebhookUrls(settings.public_url)

    def send(self, message: OutboundMessage) -> str:
        raise PermanentSendError("a voice channel cannot carry a written reply; answer by SMS or email")

    def place_call(
        self,
        *,
        from_number: str,
        agent_endpoint: str,
        customer_number: str,
        conversation_id: int,
        agent_id: int,
        timeout: int = 30,
    ) -> str:
        """Ring the agent (phone or ``client:identity``); once they answer, Twilio fetches the bridge TwiML."""
        client = twilio_client(self.settings)
        try:
            created = client.calls.create(
                to=agent_endpoint,
                from_=from_number,
                url=self.urls.bridge(conversation_id, agent_id, customer_number),
                method="POST",
                status_callback=self.urls.voice_status(),
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                status_callback_method="POST",
                timeout=timeout,
            )
        except Exception as exc:
            raise send_error(exc) from exc
        return str(created.sid)

    def answer_queue(
        self,
        *,
        from_number: str,
        agent_endpoint: str,
        queue: str,
        agent_id: int,
        call_id: int,
        claim: str,
        channel_settings: Mapping[str, Any] | None = None,
        timeout: int = 30,
    ) -> str:
        """Ring the agent (phone or ``client:identity``); once they pick up, the inline TwiML dials the queue."""
        settings = VoiceSettings.from_settings(channel_settings)
        document = answer_queue(settings, self.urls, queue, agent_id=agent_id, call_id=call_id, claim=claim)
        client = twilio_client(self.settings)
        try:
            created = client.calls.create(
                to=agent_endpoint,
                from_=from_number,
                twiml=document,
                status_callback=self.urls.queue_answer_status(agent_id, call_id, claim),
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                status_callback_method="POST",
                timeout=timeout,
            )
        except Exception as exc:
            raise send_error(exc) from exc
        if not created.sid:
            raise RetryableSendError("Twilio accepted the call but returned no sid")
        return str(created.sid)


@dataclass(frozen=True, slots=True)
class FetchedMedia:
    content_type: str
    data: bytes


def fetch_media(
    settings: TwilioSettings,
    url: str,
    *,
    max_bytes: int,
    allowed_types: tuple[str, ...],
    timeout: float = REQUEST_TIMEOUT,
) -> FetchedMedia:
    """Download one MMS media item with the account credentials, within type and size limits.

    Twilio answers media URLs with a redirect to its storage; requests drops the credentials when the host
    changes, so they never leak to the storage host. Raise SendError (retryable or permanent).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https" or not (host == "twilio.com" or host.endswith(".twilio.com")):
        raise PermanentSendError(f"refusing to fetch media from a non-Twilio URL: {url}")
    if not settings.account_sid or not settings.auth_token:
        raise RetryableSendError("Twilio is not configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    target = RebasedHttpClient(settings.api_base).rebase(url) if settings.api_base else url
    try:
        with requests.get(
            target, auth=(settings.account_sid, settings.auth_token), stream=True, timeout=timeout, allow_redirects=True
        ) as response:
            if response.status_code == 404:
                raise PermanentSendError("the media no longer exists at Twilio")
            if response.status_code in (401, 403):
                raise PermanentSendError(f"Twilio refused the media download (HTTP {response.status_code})")
            if response.status_code == 429 or response.status_code >= 500:
                raise RetryableSendError(f"Twilio media download failed (HTTP {response.status_code})")
            if response.status_code != 200:
                raise PermanentSendError(f"Twilio media download failed (HTTP {response.status_code})")
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if not type_allowed(content_type, allowed_types):
                raise PermanentSendError(f"media type {content_type or 'unknown'} is not accepted")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise PermanentSendError(f"media is {int(declared)} bytes, over the {max_bytes}-byte limit")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise PermanentSendError(f"media is over the {max_bytes}-byte limit")
                chunks.append(chunk)
    except requests.RequestException as exc:
        raise RetryableSendError(f"cannot reach Twilio for media: {exc}") from exc
    return FetchedMedia(content_type, b"".join(chunks))


def type_allowed(content_type: str, allowed: tuple[str, ...]) -> bool:
    """Return whether ``content_type`` matches one of ``allowed`` ("image/*", "application/pdf", …)."""
    if not content_type:
        return False
    for pattern in allowed:
        if pattern.endswith("/*") and content_type.startswith(pattern[:-1]):
            return True
        if content_type == pattern:
            return True
    return False
