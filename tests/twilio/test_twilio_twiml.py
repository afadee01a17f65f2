"""Generated TwiML, parsed as XML and checked element by element."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

from connectors.twilio.twiml import (
    AgentEndpoint,
    VoiceSettings,
    WebhookUrls,
    after_bridge,
    after_dial,
    after_queue,
    after_recording,
    bridge,
    empty_messaging,
    incoming_call,
    queue_wait,
)

URLS = WebhookUrls("https://desk.example.com")


def _xml(twiml: str) -> ET.Element:
    assert twiml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(twiml.encode("utf-8"))
    assert root.tag == "Response"
    return root


def _tags(root: ET.Element) -> list[str]:
    return [child.tag for child in root]


def test_open_line_rings_every_available_agent_phone_and_client() -> None:
    agents = [
        AgentEndpoint(1, phone="+48601234567"),
        AgentEndpoint(2, client_identity="anna"),
        AgentEndpoint(3, phone="+48601234568", client_identity="bob"),
        AgentEndpoint(4),
    ]
    root = _xml(incoming_call(VoiceSettings(ring_timeout=25), URLS, open_now=True, agents=agents))
    assert _tags(root) == ["Say", "Dial"]
    say, dial = root
    assert say.text == "Thank you for calling. Please hold while we connect you."
    assert say.get("language") == "en-US"
    assert dial.get("timeout") == "25"
    assert dial.get("action") == "https://desk.example.com/webhooks/twilio/voice/dial"
    assert dial.get("method") == "POST"
    assert dial.get("answerOnBridge") == "true"
    targets = [(child.tag, child.text, child.get("statusCallback"), child.get("statusCallbackEvent")) for child in dial]
    status = "https://desk.example.com/webhooks/twilio/voice/agent-status?agent="
    assert targets == [
        ("Number", "+48601234567", status + "1", "answered completed"),
        ("Client", "anna", status + "2", "answered completed"),
        ("Number", "+48601234568", status + "3", "answered completed"),
        ("Client", "bob", status + "3", "answered completed"),
    ]


def test_polish_greeting_uses_polish_voice_and_custom_text() -> None:
    settings = VoiceSettings.from_settings({"language": "pl", "greeting": "Sklep Kowalski, dzień dobry!"})
    root = _xml(incoming_call(settings, URLS, open_now=True, agents=[AgentEndpoint(1, phone="+48601234567")]))
    say = root.find("Say")
    assert say.text == "Sklep Kowalski, dzień dobry!"
    assert say.get("language") == "pl-PL"
    assert say.get("voice") == "Polly.Ewa"


def test_closed_line_goes_straight_to_voicemail_with_transcription() -> None:
    root = _xml(incoming_call(VoiceSettings(), URLS, open_now=False, agents=[AgentEndpoint(1, phone="+48601234567")]))
    assert _tags(root) == ["Say", "Say", "Record", "Say", "Hangup"]
    assert root[0].text == "Thank you for calling. We are closed right now."
    assert "leave a message" in root[1].text
    record = root.find("Record")
    assert record.get("action") == "https://desk.example.com/webhooks/twilio/voice/recording"
    assert record.get("maxLength") == "120"
    assert record.get("playBeep") == "true"
    assert record.get("transcribe") == "true"
    assert record.get("transcribeCallback") == "https://desk.example.com/webhooks/twilio/voice/transcription"
    assert record.get("recordingStatusCallback") == "https://desk.example.com/webhooks/twilio/voice/recording-status"
    assert root.find("Dial") is None


def test_polish_voicemail_is_not_sent_for_transcription() -> None:
    root = _xml(incoming_call(VoiceSettings(language="pl"), URLS, open_now=False, agents=[]))
    record = root.find("Record")
    assert record.get("transcribe") is None
    assert record.get("transcribeCallback") is None
    assert root[0].text == "Dziękujemy za telefon. W tej chwili jesteśmy nieczynni."


def test_no_reachable_agent_waits_in_queue_when_configured() -> None:
    settings = VoiceSettings.from_settings({"queue": "support", "queue_timeout": 60})
    root = _xml(incoming_call(settings, URLS, open_now=True, agents=[AgentEndpoint(7)]))
    assert _tags(root) == ["Say", "Enqueue"]
    enqueue = root.find("Enqueue")
    assert enqueue.text == "support"
    assert enqueue.get("waitUrl") == "https://desk.example.com/webhooks/twilio/voice/queue-wait"
    assert enqueue.get("action") == "https://desk.example.com/webhooks/twilio/voice/queue"


def test_no_agent_and_no_queue_means_voicemail() -> None:
    root = _xml(incoming_call(VoiceSettings(), URLS, open_now=True, agents=[]))
    assert _tags(root) == ["Say", "Say", "Record", "Say", "Hangup"]


def test_after_dial_hangs_up_when_answered_else_queue_then_voicemail() -> None:
    settings = VoiceSettings(queue="support")
    assert _tags(_xml(after_dial(settings, URLS, "completed"))) == ["Hangup"]
    assert _tags(_xml(after_dial(settings, URLS, "no-answer"))) == ["Enqueue"]
    assert "Record" in _tags(_xml(after_dial(settings, URLS, "no-answer", tried_queue=True)))
    assert "Record" in _tags(_xml(after_dial(VoiceSettings(), URLS, "busy")))


def test_queue_wait_holds_then_leaves_at_timeout() -> None:
    settings = VoiceSettings(queue="support", queue_timeout=60)
    holding = _xml(queue_wait(settings, 10))
    assert _tags(holding) == ["Say", "Pause"]
    assert holding.find("Pause").get("length") == "15"
    assert _tags(_xml(queue_wait(settings, 55))) == ["Say", "Pause"]
    assert _xml(queue_wait(settings, 55)).find("Pause").get("length") == "5"
    assert _tags(_xml(queue_wait(settings, 60))) == ["Leave"]
    assert "Record" in _tags(_xml(after_queue(settings, URLS, "leave")))
    assert _tags(_xml(after_queue(settings, URLS, "bridged"))) == ["Hangup"]


def test_after_recording_says_goodbye() -> None:
    root = _xml(after_recording(VoiceSettings(language="pl")))
    assert _tags(root) == ["Say", "Hangup"]
    assert root[0].text == "Dziękujemy. Do widzenia."


def test_click_to_call_bridge_dials_customer_from_channel_number() -> None:
    url = URLS.bridge(12, 3, "+48601234567")
    assert parse_qs(urlsplit(url).query) == {"conversation": ["12"], "agent": ["3"], "to": ["+48601234567"]}
    root = _xml(bridge(VoiceSettings(), URLS, "+48601234567", "+48221234567"))
    assert _tags(root) == ["Say", "Dial"]
    dial = root.find("Dial")
    assert dial.get("callerId") == "+48221234567"
    assert dial.get("action") == "https://desk.example.com/webhooks/twilio/voice/bridge-action"
    number = dial.find("Number")
    assert number.text == "+48601234567"
    assert number.get("statusCallback") == "https://desk.example.com/webhooks/twilio/voice/outbound-status"
    assert number.get("statusCallbackEvent") == "ringing answered completed"
    assert _tags(_xml(after_bridge(VoiceSettings(), "completed"))) == ["Hangup"]
    assert _tags(_xml(after_bridge(VoiceSettings(), "no-answer"))) == ["Say", "Hangup"]


def test_settings_are_clamped_and_defaulted() -> None:
    settings = VoiceSettings.from_settings(
        {"language": "de", "ring_timeout": "9999", "queue_timeout": "x", "voicemail_max_length": 1}
    )
    assert settings.language == "en"
    assert settings.ring_timeout == 600
    assert settings.queue_timeout == 120
    assert settings.voicemail_max_length == 5
    assert VoiceSettings.from_settings(None) == VoiceSettings()


def test_sms_webhook_answer_is_an_empty_messaging_response() -> None:
    root = _xml(empty_messaging())
    assert list(root) == []
