"""Parsing every documented Twilio payload into connector types."""

from __future__ import annotations

import datetime as dt

import pytest
from twilio_helpers import form, load_payload, payload_names

from connectors.base import Identity
from connectors.twilio.parsing import (
    TwilioPayloadError,
    call_to_inbound,
    caller_identity,
    describe_error,
    opt_keyword,
    parse_call,
    parse_media,
    parse_sms,
    parse_sms_status,
)


def _params(name: str):
    return form(load_payload(name)["body_urlencoded"])


def test_incoming_sms_becomes_inbound_message() -> None:
    message = parse_sms(_params("sms_incoming"))
    assert message.channel == "sms"
    assert message.sender == Identity("phone", "+14017122661")
    assert message.recipient == "+15558675310"
    assert message.text == "Ahoy! Let's build something amazing."
    assert message.provider_id == "SMXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
    assert message.kind == "message"
    assert message.attachments == []
    twilio = message.metadata["twilio"]
    assert twilio["account_sid"] == "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
    assert twilio["messaging_service_sid"] == "MGXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
    assert twilio["num_segments"] == 1
    assert twilio["geo"]["FromCity"] == "SAN FRANCISCO"
    assert "media" not in message.metadata
    assert "opt_keyword" not in message.metadata


def test_polish_sms_text_survives_intact() -> None:
    message = parse_sms(_params("sms_incoming_polish_utf8"))
    assert message.text == "Dzień dobry, zamówienie nr 123 nie dotarło. Proszę o pomoc – Łukasz"  # noqa: RUF001 - real Polish punctuation


def test_mms_media_are_listed_for_the_worker_not_fetched() -> None:
    message = parse_sms(_params("mms_incoming_with_media"))
    assert message.attachments == []  # the webhook never blocks on a download
    assert message.metadata["media"] == [
        {
            "url": "https://api.twilio.com/2010-04-01/Accounts/ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX/Messages/"
            "MMXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX/Media/MEXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            "content_type": "image/jpeg",
        }
    ]


def test_media_indexes_are_zero_based_and_capped() -> None:
    params = {
        "NumMedia": "3",
        "MediaUrl0": "https://api.twilio.com/a",
        "MediaContentType0": "image/png",
        "MediaUrl1": "https://api.twilio.com/b",
        "MediaContentType1": "video/mp4",
        "MediaUrl2": "https://api.twilio.com/c",
        "MediaContentType2": "text/vcard",
        "MediaUrl3": "https://ignored",
    }
    assert [item.url[-1] for item in parse_media(params)] == ["a", "b", "c"]
    assert parse_media({"NumMedia": "x"}) == []


def test_sms_without_sid_or_with_bad_sender_is_refused() -> None:
    with pytest.raises(TwilioPayloadError):
        parse_sms({"From": "+14017122661", "Body": "hi"})
    with pytest.raises(TwilioPayloadError):
        parse_sms({"MessageSid": "SM1", "From": "not a number", "Body": "hi"})


def test_local_sender_number_is_normalised_with_default_region() -> None:
    message = parse_sms({"MessageSid": "SM1", "From": "601 234 567", "To": "+48221234567", "Body": "x"}, "PL")
    assert message.sender.value == "+48601234567"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("STOP", "stop"),
        (" stop ", "stop"),
        ("Unsubscribe", "stop"),
        ("STOPALL", "stop"),
        ("cancel.", "stop"),
        ("START", "start"),
        ("unstop", "start"),
        ("yes", "start"),
        ("HELP", "help"),
        ("info", "help"),
        ("please stop sending", None),
        ("Stop it!", None),
        ("", None),
        ("Ahoy", None),
    ],
)
def test_opt_keywords_match_the_whole_message(body: str, expected: str | None) -> None:
    assert opt_keyword(body) == expected


def test_advanced_opt_out_verdict_wins() -> None:
    assert opt_keyword("arret", "STOP") == "stop"
    assert opt_keyword("STOP", "START") == "start"
    message = parse_sms(
        {"MessageSid": "SM1", "From": "+14017122661", "To": "+15558675310", "Body": "Stop", "OptOutType": "STOP"}
    )
    assert message.metadata["opt_keyword"] == "stop"


def test_status_callback_sent() -> None:
    status = parse_sms_status(_params("sms_status_callback_sent"))
    assert status.message_sid == "SM1342fe1b2c904d1ab04f0fc7a58abca9"
    assert status.twilio_status == "sent"
    assert status.delivery_status == "sent"
    assert status.error_code is None
    assert status.error is None


def test_status_callback_undelivered_carries_error_code() -> None:
    status = parse_sms_status(_params("sms_status_callback_undelivered"))
    assert status.delivery_status == "undelivered"
    assert status.error_code == "30003"
    assert status.error == "Twilio error 30003: unreachable destination handset (off or out of coverage)"
    assert status.params["RawDlrDoneDate"] == "2401011200"


def test_unknown_error_code_points_to_twilio_docs() -> None:
    assert describe_error("39999") == "Twilio error 39999: see https://www.twilio.com/docs/api/errors/39999"


def test_incoming_call_payload() -> None:
    event = parse_call(_params("voice_incoming_call"))
    assert event.call_sid == "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
    assert event.call_status == "ringing"
    assert event.direction == "inbound"
    assert event.from_number == "+14158675310"
    assert event.to_number == "+18005551212"
    message = call_to_inbound(event)
    assert message.channel == "voice"
    assert message.kind == "call"
    assert message.provider_id == event.call_sid
    assert message.sender == Identity("phone", "+14158675310")
    assert message.recipient == "+18005551212"
    assert message.metadata["twilio"]["geo"] == {
        "FromCity": "SAN FRANCISCO",
        "FromState": "CA",
        "FromZip": "94103",
        "FromCountry": "US",
        "ToCountry": "US",
    }


def test_withheld_caller_gets_a_call_scoped_identity() -> None:
    for caller in ("anonymous", "unknown", "Restricted", ""):
        event = parse_call({"CallSid": "CA1", "From": caller, "To": "+18005551212", "CallStatus": "ringing"})
        assert caller_identity(event) is None
        assert call_to_inbound(event).sender == Identity("external", "twilio-withheld:CA1")


def test_status_callback_completed() -> None:
    event = parse_call(_params("voice_status_callback_completed"))
    assert event.call_status == "completed"
    assert event.duration == 47
    assert event.sequence_number == 3
    assert event.timestamp == dt.datetime(2024, 1, 1, 12, 0, 47, tzinfo=dt.UTC)


def test_record_action_recording_and_transcription_payloads() -> None:
    record = parse_call(_params("voice_record_action"))
    assert record.recording_url.endswith("/Recordings/REXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX")
    assert record.recording_duration == 14
    assert record.params["Digits"] == "hangup"
    status = parse_call(_params("voice_recording_status_callback"))
    assert status.recording_status == "completed"
    assert status.recording_sid == "REXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
    assert status.recording_duration == 14
    transcript = parse_call(_params("voice_transcribe_callback"))
    assert transcript.transcription_status == "completed"
    assert transcript.transcription_text == "Hi, this is a test voicemail, please call me back."


def test_gather_docs_example_parses_as_call_event() -> None:
    event = parse_call(_params("voice_gather_digits_docs_example"))
    assert event.call_sid == "CA1234567890ABCDE"
    assert event.params["Digits"] == "1234"


@pytest.mark.parametrize("name", payload_names())
def test_every_payload_parses(name: str) -> None:
    params = _params(name)
    if name.startswith("sms_status"):
        assert parse_sms_status(params).delivery_status
    elif name.startswith(("sms_", "mms_")):
        assert parse_sms(params).provider_id
    else:
        assert parse_call(params).call_sid


def test_call_without_sid_is_refused() -> None:
    with pytest.raises(TwilioPayloadError):
        parse_call({"From": "+14158675310"})
