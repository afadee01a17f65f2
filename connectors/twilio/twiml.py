"""TwiML for the voice channel, built with the twilio library: greeting, ringing agents, queue, voicemail,
and the call an agent takes to answer the queue.

Pure: the caller decides whether the line is open and which agents are available; this module only turns
that decision and the channel's settings into TwiML. Every callback URL is absolute, under PUBLIC_URL, so the
signature Twilio computes for it is the one the webhook validates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

WEBHOOK_PREFIX = "/webhooks/twilio"

# Twilio <Say> language codes and a neural voice that speaks each (basic man/woman voices lack Polish).
LANGUAGES = {"en": ("en-US", "Polly.Joanna"), "pl": ("pl-PL", "Polly.Ewa")}

TEXTS = {
    "en": {
        "greeting": "Thank you for calling. Please hold while we connect you.",
        "closed": "Thank you for calling. We are closed right now.",
        "voicemail": (
            "We cannot take your call right now. Please leave a message after the tone, and we will call you back."
        ),
        "hold": "All our agents are busy. Please stay on the line.",
        "goodbye": "Thank you. Goodbye.",
        "no_message": "We did not hear a message. Goodbye.",
        "connecting": "Connecting you to the customer.",
        "customer_unreachable": "The customer did not answer. Goodbye.",
        "queue_agent": "Connecting you to the next caller.",
        "queue_caller": "Thank you for waiting. Connecting you to an agent now.",
        "queue_empty": "Nobody is waiting any more. Goodbye.",
    },
    "pl": {
        "greeting": "Dziękujemy za telefon. Proszę czekać, łączymy z konsultantem.",
        "closed": "Dziękujemy za telefon. W tej chwili jesteśmy nieczynni.",
        "voicemail": "Nie możemy teraz odebrać połączenia. Prosimy zostawić wiadomość po sygnale, oddzwonimy.",
        "hold": "Wszyscy konsultanci są zajęci. Prosimy pozostać na linii.",
        "goodbye": "Dziękujemy. Do widzenia.",
        "no_message": "Nie nagrano wiadomości. Do widzenia.",
        "connecting": "Łączymy z klientem.",
        "customer_unreachable": "Klient nie odebrał. Do widzenia.",
        "queue_agent": "Łączymy z następnym oczekującym klientem.",
        "queue_caller": "Dziękujemy za cierpliwość. Łączymy z konsultantem.",
        "queue_empty": "Nikt już nie czeka. Do widzenia.",
    },
}

# Twilio transcribes only English <Record> recordings; asking for Polish would bill and fail.
TRANSCRIBED_LANGUAGES = frozenset({"en"})


def _bounded_int(value: Any, default: int, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return max(low, min(high, number))


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    """A voice channel's settings (Channel.settings), with defaults for everything."""

    language: str = "en"
    greeting: str | None = None
    closed_message: str | None = None
    voicemail_prompt: str | None = None
    voice: str | None = None
    ring_timeout: int = 20
    queue: str | None = None
    queue_timeout: int = 120
    voicemail_max_length: int = 120

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> VoiceSettings:
        """Read the channel's settings, ignoring unknown keys and clamping numbers to what Twilio accepts."""
        settings = settings or {}
        language = str(settings.get("language") or "en").lower()[:2]
        if language not in LANGUAGES:
            language = "en"
        return cls(
            language=language,
            greeting=(settings.get("greeting") or None),
            closed_message=(settings.get("closed_message") or None),
            voicemail_prompt=(settings.get("voicemail_prompt") or None),
            voice=(settings.get("voice") or None),
            ring_timeout=_bounded_int(settings.get("ring_timeout"), 20, 5, 600),
            queue=(str(settings["queue"])[:64] if settings.get("queue") else None),
            queue_timeout=_bounded_int(settings.get("queue_timeout"), 120, 10, 3600),
            voicemail_max_length=_bounded_int(settings.get("voicemail_max_length"), 120, 5, 3600),
        )

    def text(self, key: str) -> str:
        overrides = {"greeting": self.greeting, "closed": self.closed_message, "voicemail": self.voicemail_prompt}
        return overrides.get(key) or TEXTS[self.language][key]

    @property
    def say_language(self) -> str:
        return LANGUAGES[self.language][0]

    @property
    def say_voice(self) -> str:
        return self.voice or LANGUAGES[self.language][1]


@dataclass(frozen=True, slots=True)
class AgentEndpoint:
    """Where one available agent can be rung: a phone number and/or a Twilio Client identity."""

    user_id: int
    phone: str | None = None
    client_identity: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookUrls:
    """The absolute URLs of the voice webhooks, under PUBLIC_URL."""

    base: str

    def _url(self, path: str, **query: Any) -> str:
        url = f"{self.base.rstrip('/')}{WEBHOOK_PREFIX}{path}"
        query = {key: value for key, value in query.items() if value is not None}
        return url + (f"?{urlencode(query)}" if query else "")

    def sms_status(self, message_id: int | None = None) -> str:
        return self._url("/sms/status", m=message_id)

    def voice(self) -> str:
        return self._url("/voice")

    def voice_status(self) -> str:
        return self._url("/voice/status")

    def dial_action(self) -> str:
        return self._url("/voice/dial")

    def agent_status(self, user_id: int) -> str:
        return self._url("/voice/agent-status", agent=user_id)

    def queue_wait(self) -> str:
        return self._url("/voice/queue-wait")

    def queue_action(self) -> str:
        return self._url("/voice/queue")

    def recording_action(self) -> str:
        return self._url("/voice/recording")

    def recording_status(self) -> str:
        return self._url("/voice/recording-status")

    def transcription(self) -> str:
        return self._url("/voice/transcription")

    def bridge(self, conversation_id: int, agent_id: int, to: str) -> str:
        return self._url("/voice/bridge", conversation=conversation_id, agent=agent_id, to=to)

    def bridge_action(self) -> str:
        return self._url("/voice/bridge-action")

    def outbound_status(self) -> str:
        return self._url("/voice/outbound-status")

    # Answering the queue: ``call`` is the caller we expect (Twilio bridges its queue's longest waiting
    # caller), ``claim`` the token of that reservation, so a late callback never touches a newer one.
    def queue_bridge(self, agent_id: int, call_id: int, claim: str) -> str:
        return self._url("/voice/queue-bridge", agent=agent_id, call=call_id, claim=claim)

    def queue_answer_status(self, agent_id: int, call_id: int, claim: str) -> str:
        return self._url("/voice/queue-answer-status", agent=agent_id, call=call_id, claim=claim)

    def queue_answer_action(self) -> str:
        return self._url("/voice/queue-answer")


def _say(response: VoiceResponse, settings: VoiceSettings, key: str) -> None:
    response.say(settings.text(key), language=settings.say_language, voice=settings.say_voice)


def _voicemail(response: VoiceResponse, settings: VoiceSettings, urls: WebhookUrls) -> None:
    _say(response, settings, "voicemail")
    transcribe = settings.language in TRANSCRIBED_LANGUAGES
    response.record(
        action=urls.recording_action(),
        method="POST",
        max_length=settings.voicemail_max_length,
        timeout=5,
        finish_on_key="#",
        play_beep=True,
        recording_status_callback=urls.recording_status(),
        recording_status_callback_event="completed",
        transcribe=transcribe or None,
        transcribe_callback=urls.transcription() if transcribe else None,
    )
    # Reached only when the caller stayed silent: <Record> then skips its action URL.
    _say(response, settings, "no_message")
    response.hangup()


def _enqueue(response: VoiceResponse, settings: VoiceSettings, urls: WebhookUrls) -> None:
    assert settings.queue
    response.enqueue(
        settings.queue, action=urls.queue_action(), method="POST", wait_url=urls.queue_wait(), wait_url_method="POST"
    )


def incoming_call(
    settings: VoiceSettings, urls: WebhookUrls, *, open_now: bool, agents: Sequence[AgentEndpoint]
) -> str:
    """Answer a new call: greeting, then ring the agents, or queue, or voicemail when closed or nobody's there."""
    response = VoiceResponse()
    if not open_now:
        _say(response, settings, "closed")
        _voicemail(response, settings, urls)
        return str(response)
    _say(response, settings, "greeting")
    reachable = [agent for agent in agents if agent.phone or agent.client_identity]
    if reachable:
        # answerOnBridge keeps the caller hearing ringing (not silence) until an agent picks up.
        dial = response.dial(
            timeout=settings.ring_timeout, action=urls.dial_action(), method="POST", answer_on_bridge=True
        )
        for agent in reachable:
            status = {
                "status_callback": urls.agent_status(agent.user_id),
                "status_callback_event": "answered completed",
            }
            if agent.phone:
                dial.number(agent.phone, status_callback_method="POST", **status)
            if agent.client_identity:
                dial.client(agent.client_identity, status_callback_method="POST", **status)
    elif settings.queue:
        _enqueue(response, settings, urls)
    else:
        _voicemail(response, settings, urls)
    return str(response)


def after_dial(
    settings: VoiceSettings, urls: WebhookUrls, dial_call_status: str | None, *, tried_queue: bool = False
) -> str:
    """Continue after <Dial> ended: hang up when an agent talked, else queue (once) or voicemail."""
    response = VoiceResponse()
    if dial_call_status in ("completed", "answered"):
        response.hangup()
    elif settings.queue and not tried_queue:
        _enqueue(response, settings, urls)
    else:
        _voicemail(response, settings, urls)
    return str(response)


def queue_wait(settings: VoiceSettings, queue_time: int | None) -> str:
    """Hold music for a queued caller; <Leave> once they waited queue_timeout, which leads to voicemail."""
    response = VoiceResponse()
    if (queue_time or 0) >= settings.queue_timeout:
        response.leave()
        return str(response)
    _say(response, settings, "hold")
    # Twilio requests the wait URL again when this document ends, so QueueTime is re-checked every pause.
    response.pause(length=min(15, max(1, settings.queue_timeout - (queue_time or 0))))
    return str(response)


def after_queue(settings: VoiceSettings, urls: WebhookUrls, queue_result: str | None) -> str:
    """Continue after <Enqueue>: voicemail when the caller left the queue or it failed, else hang up."""
    response = VoiceResponse()
    if queue_result in ("leave", "redirected", "error", "system-error", "queue-full"):
        _voicemail(response, settings, urls)
    else:
        response.hangup()
    return str(response)


def after_recording(settings: VoiceSettings) -> str:
    """Thank the caller after a voicemail and hang up."""
    response = VoiceResponse()
    _say(response, settings, "goodbye")
    response.hangup()
    return str(response)


def bridge(settings: VoiceSettings, urls: WebhookUrls, customer_number: str, caller_id: str) -> str:
    """Click-to-call, agent's leg answered: tell them, then dial the customer from the channel's number."""
    response = VoiceResponse()
    _say(response, settings, "connecting")
    dial = response.dial(
        caller_id=caller_id, timeout=max(settings.ring_timeout, 20), action=urls.bridge_action(), method="POST"
    )
    dial.number(
        customer_number,
        status_callback=urls.outbound_status(),
        status_callback_event="ringing answered completed",
        status_callback_method="POST",
    )
    return str(response)


def after_bridge(settings: VoiceSettings, dial_call_status: str | None) -> str:
    """Click-to-call, customer leg ended: say so when the customer never answered, then hang up."""
    response = VoiceResponse()
    if dial_call_status not in ("completed", "answered"):
        _say(response, settings, "customer_unreachable")
    response.hangup()
    return str(response)


def answer_queue(
    settings: VoiceSettings, urls: WebhookUrls, queue: str, *, agent_id: int, call_id: int, claim: str
) -> str:
    """An agent answering the queue picked up: dial the queue, which bridges its longest waiting caller.

    Twilio requests the <Queue> url with the dequeued caller's CallSid just before bridging: that is where the
    call item learns who answered it. An empty queue makes <Dial> wait, so its timeout is kept short.
    """
    response = VoiceResponse()
    _say(response, settings, "queue_agent")
    dial = response.dial(timeout=settings.ring_timeout, action=urls.queue_answer_action(), method="POST")
    dial.queue(queue, url=urls.queue_bridge(agent_id, call_id, claim), method="POST")
    return str(response)


def queue_caller_connected(settings: VoiceSettings) -> str:
    """Played to the dequeued caller just before they are bridged to the agent (Say/Play/Pause only)."""
    response = VoiceResponse()
    _say(response, settings, "queue_caller")
    return str(response)


def after_queue_answer(settings: VoiceSettings, dial_call_status: str | None) -> str:
    """The agent's <Dial><Queue> ended: say so when nobody was left to take, then hang up."""
    response = VoiceResponse()
    if dial_call_status not in ("completed", "answered"):
        _say(response, settings, "queue_empty")
    response.hangup()
    return str(response)


def not_in_service() -> str:
    """Answer a call to a number no voice channel is configured for."""
    response = VoiceResponse()
    response.say("This number is not in service.", language="en-US")
    response.hangup()
    return str(response)


def hangup() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


def empty_voice() -> str:
    return str(VoiceResponse())


_EMPTY_MESSAGING = str(MessagingResponse())


def empty_messaging() -> str:
    """An SMS webhook answer that sends nothing back (replies go through the outbox)."""
    return _EMPTY_MESSAGING
