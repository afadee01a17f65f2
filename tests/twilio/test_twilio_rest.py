"""The outbound path: the real twilio Client against a local stand-in for Twilio's REST API."""

from __future__ import annotations

import base64

import pytest
from twilio_helpers import ACCOUNT_SID, AUTH_TOKEN
from twilio_standin import TwilioStandIn

from connectors.base import Attachment, Identity, OutboundMessage, PermanentSendError, RetryableSendError
from connectors.twilio.rest import (
    TwilioSettings,
    TwilioSmsConnector,
    TwilioVoiceConnector,
    fetch_media,
    twilio_client,
    type_allowed,
)


def _settings(standin: TwilioStandIn) -> TwilioSettings:
    return TwilioSettings(ACCOUNT_SID, AUTH_TOKEN, "https://desk.example.com", standin.base_url)


def _message(**overrides) -> OutboundMessage:
    values = {
        "message_id": 42,
        "channel": "sms",
        "channel_address": "+15558675310",
        "recipient": Identity("phone", "+14017122661"),
        "recipient_name": None,
        "text": "Your parcel left the warehouse.",
    }
    values.update(overrides)
    return OutboundMessage(**values)


def test_sms_send_is_the_exact_messages_api_request(standin: TwilioStandIn) -> None:
    sid = TwilioSmsConnector(_settings(standin)).send(_message())
    assert sid.startswith("SM")
    assert len(sid) == 34
    (request,) = standin.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.form == {
        "To": ["+14017122661"],
        "From": ["+15558675310"],
        "Body": ["Your parcel left the warehouse."],
        "StatusCallback": ["https://desk.example.com/webhooks/twilio/sms/status?m=42"],
    }
    assert (
        request.headers["Authorization"] == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    )
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["User-Agent"].startswith("twilio-python/9.13.0")
    assert request.headers["Accept"] == "application/json"


def test_polish_text_is_sent_as_utf8(standin: TwilioStandIn) -> None:
    TwilioSmsConnector(_settings(standin)).send(_message(text="Zamówienie wysłane – dziękujemy!"))  # noqa: RUF001 - real Polish punctuation
    assert standin.requests[0].field("Body") == "Zamówienie wysłane – dziękujemy!"  # noqa: RUF001 - real Polish punctuation
    assert b"Zam%C3%B3wienie" in standin.requests[0].body


def test_messaging_service_replaces_from_number(standin: TwilioStandIn) -> None:
    TwilioSmsConnector(_settings(standin)).send(_message(settings={"messaging_service_sid": "MG" + "1" * 32}))
    form = standin.requests[0].form
    assert "From" not in form
    assert form["MessagingServiceSid"] == ["MG" + "1" * 32]


def test_twilio_refusal_is_permanent_and_keeps_the_code(standin: TwilioStandIn) -> None:
    standin.fail_next(400, 21610, "Attempt to send to unsubscribed recipient")
    with pytest.raises(PermanentSendError) as info:
        TwilioSmsConnector(_settings(standin)).send(_message())
    assert str(info.value) == "Twilio error 21610: Attempt to send to unsubscribed recipient"


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, 20500), (503, 20503)])
def test_throttling_and_outages_are_retryable(standin: TwilioStandIn, status: int, code: int) -> None:
    standin.fail_next(status, code, "busy")
    with pytest.raises(RetryableSendError):
        TwilioSmsConnector(_settings(standin)).send(_message())


def test_unreachable_twilio_is_retryable() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = TwilioSettings(ACCOUNT_SID, AUTH_TOKEN, "https://desk.example.com", f"http://127.0.0.1:{port}")
    with pytest.raises(RetryableSendError):
        TwilioSmsConnector(settings).send(_message())


def test_wrong_credentials_are_permanent(standin: TwilioStandIn) -> None:
    settings = TwilioSettings(ACCOUNT_SID, "wrong", "https://desk.example.com", standin.base_url)
    with pytest.raises(PermanentSendError, match="20003"):
        TwilioSmsConnector(settings).send(_message())


def test_unsendable_messages_never_reach_twilio(standin: TwilioStandIn) -> None:
    connector = TwilioSmsConnector(_settings(standin))
    with pytest.raises(PermanentSendError, match="phone number"):
        connector.send(_message(recipient=Identity("email", "a@example.com")))
    with pytest.raises(PermanentSendError, match="text"):
        connector.send(_message(text="   "))
    with pytest.raises(PermanentSendError, match="1600"):
        connector.send(_message(text="a" * 1601))
    with pytest.raises(PermanentSendError, match="attachments"):
        connector.send(_message(attachments=[Attachment("a.pdf", "application/pdf", b"%PDF")]))
    with pytest.raises(PermanentSendError, match="not configured"):
        TwilioSmsConnector(TwilioSettings("", "", "https://x", standin.base_url)).send(_message())
    assert standin.requests == []


def test_click_to_call_is_the_exact_calls_api_request(standin: TwilioStandIn) -> None:
    sid = TwilioVoiceConnector(_settings(standin)).place_call(
        from_number="+15558675310",
        agent_endpoint="+48601234567",
        customer_number="+14017122661",
        conversation_id=12,
        agent_id=3,
    )
    assert sid.startswith("CA")
    (request,) = standin.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert request.form == {
        "To": ["+48601234567"],
        "From": ["+15558675310"],
        "Url": ["https://desk.example.com/webhooks/twilio/voice/bridge?conversation=12&agent=3&to=%2B14017122661"],
        "Method": ["POST"],
        "StatusCallback": ["https://desk.example.com/webhooks/twilio/voice/status"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "StatusCallbackMethod": ["POST"],
        "Timeout": ["30"],
    }


def test_voice_channel_refuses_text_replies() -> None:
    with pytest.raises(PermanentSendError, match="voice"):
        TwilioVoiceConnector(TwilioSettings("AC1", "t", "https://x")).send(_message(channel="voice"))


def test_media_download_follows_twilio_redirect_without_leaking_credentials(standin: TwilioStandIn) -> None:
    url = standin.add_media(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM1/Media/ME1", "image/jpeg", b"\xff\xd8jpeg")
    media = fetch_media(_settings(standin), url, max_bytes=1024, allowed_types=("image/*",))
    assert media == type(media)("image/jpeg", b"\xff\xd8jpeg")
    first, second = standin.requests
    assert first.headers["Authorization"].startswith("Basic ")
    assert second.path.startswith("/storage/")
    assert "Authorization" not in second.headers


def test_media_limits(standin: TwilioStandIn) -> None:
    url = standin.add_media(
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM1/Media/ME2", "application/x-msdownload", b"MZ"
    )
    with pytest.raises(PermanentSendError, match="not accepted"):
        fetch_media(_settings(standin), url, max_bytes=1024, allowed_types=("image/*",))
    big = standin.add_media(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM1/Media/ME3", "image/png", b"x" * 5000)
    with pytest.raises(PermanentSendError, match="limit"):
        fetch_media(_settings(standin), big, max_bytes=4096, allowed_types=("image/*",))
    with pytest.raises(PermanentSendError, match="no longer exists"):
        fetch_media(
            _settings(standin),
            f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Media/none",
            max_bytes=10,
            allowed_types=("image/*",),
        )
    with pytest.raises(PermanentSendError, match="non-Twilio"):
        fetch_media(_settings(standin), "http://169.254.169.254/latest", max_bytes=10, allowed_types=("image/*",))


def test_type_patterns() -> None:
    assert type_allowed("image/png", ("image/*",))
    assert type_allowed("application/pdf", ("image/*", "application/pdf"))
    assert not type_allowed("application/pdfx", ("application/pdf",))
    assert not type_allowed("", ("image/*",))


def test_clients_are_shared_per_credentials(standin: TwilioStandIn) -> None:
    assert twilio_client(_settings(standin)) is twilio_client(_settings(standin))
