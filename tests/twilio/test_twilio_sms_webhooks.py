"""SMS end to end: signed webhooks in, opt-out, MMS media by the worker, replies out through the outbox."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import func, select
from twilio_helpers import ACCOUNT_SID, PUBLIC_URL, SHOP_SMS, form, load_payload

from app.events import CUSTOMER_UPDATED, MESSAGE_UPDATED


@pytest.fixture
def sms_channel(session):
    from app.models import Channel

    # The corpus' To (+1 555…) is a fictional NANP number, which channel validation rightly refuses; a real
    # Twilio number always validates, so the row is inserted directly here.
    channel = Channel(kind="sms", name="Shop SMS", address=SHOP_SMS, settings={})
    session.add(channel)
    session.commit()
    return channel


def _corpus_params(name: str, **changes: str) -> dict[str, str]:
    params = form(load_payload(name)["body_urlencoded"]).to_dict()
    params.update(changes)
    return params


def _count(session, model) -> int:
    return session.scalar(select(func.count(model.id)))


def test_signed_sms_is_stored_once_on_the_senders_timeline(app, session, sms_channel, twilio_post, events):
    from app.models import Conversation, CustomerIdentity, Message

    params = _corpus_params("sms_incoming")
    response = twilio_post("/webhooks/twilio/sms", params)
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert ET.fromstring(response.data).tag == "Response"
    assert len(ET.fromstring(response.data)) == 0
    message = session.scalars(select(Message)).one()
    assert message.channel == "sms"
    assert message.direction == "in"
    assert message.kind == "message"
    assert message.text == "Ahoy! Let's build something amazing."
    assert message.provider_id == "SMXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
    assert message.channel_id == sms_channel.id
    identity = session.scalars(select(CustomerIdentity)).one()
    assert (identity.kind, identity.value, identity.verified) == ("phone", "+14017122661", True)
    conversation = session.get(Conversation, message.conversation_id)
    assert conversation.origin_channel == "sms"
    assert conversation.status == "open"

    # Twilio retries (timeouts, 5xx): the same MessageSid never makes a second message.
    again = twilio_post("/webhooks/twilio/sms", params)
    assert again.status_code == 200
    assert _count(session, Message) == 1


@pytest.mark.parametrize("signature", ["", "RSOYDt4T1cUTdK1PDd93/VVr8B8=", "garbage"])
def test_missing_or_bad_signature_is_403_and_stores_nothing(app, session, sms_channel, twilio_post, signature):
    from app.models import Customer, Message

    response = twilio_post("/webhooks/twilio/sms", _corpus_params("sms_incoming"), signature=signature)
    assert response.status_code == 403
    assert response.json["error"]["code"] == "invalid_signature"
    assert _count(session, Message) == 0
    assert _count(session, Customer) == 0


def test_signature_is_checked_against_public_url_not_the_forwarded_host(app, session, sms_channel):
    """Behind a proxy the app sees http://internal:8000; Twilio signed https://helpdesk.example.com."""
    from connectors.twilio.signature import compute_signature

    params = _corpus_params("sms_incoming")
    client = app.test_client()
    internal = compute_signature("12345", "http://localhost/webhooks/twilio/sms", params)
    refused = client.post("/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": internal})
    assert refused.status_code == 403
    public = compute_signature("12345", f"{PUBLIC_URL}/webhooks/twilio/sms", params)
    accepted = client.post(
        "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": public}, base_url="http://internal:8000"
    )
    assert accepted.status_code == 200


def test_tampered_body_is_refused(app, session, sms_channel):
    from connectors.twilio.signature import compute_signature

    params = _corpus_params("sms_incoming")
    signature = compute_signature("12345", f"{PUBLIC_URL}/webhooks/twilio/sms", params)
    params["Body"] = "Send the refund to my other account"
    response = app.test_client().post("/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


def test_sms_to_an_unconfigured_number_is_refused_and_stores_nothing(app, session, twilio_post):
    from app.models import Message

    response = twilio_post("/webhooks/twilio/sms", _corpus_params("sms_incoming"))
    assert response.status_code == 404
    assert response.json["error"]["code"] == "no_channel"
    assert _count(session, Message) == 0


def test_polish_text_arrives_intact(app, session, sms_channel, twilio_post):
    from app.models import Message

    assert twilio_post("/webhooks/twilio/sms", _corpus_params("sms_incoming_polish_utf8")).status_code == 200
    assert session.scalars(select(Message)).one().text == (
        "Dzień dobry, zamówienie nr 123 nie dotarło. Proszę o pomoc – Łukasz"  # noqa: RUF001 - real Polish punctuation
    )


def test_stop_opts_out_and_replies_are_refused_before_sending_start_opts_back_in(
    app, session, sms_channel, twilio_post, standin, events
):
    from app.models import Conversation, CustomerIdentity, Message
    from app.services.errors import ValidationFailed
    from app.services.reply import reply

    twilio_post("/webhooks/twilio/sms", _corpus_params("sms_incoming"))
    stop = twilio_post("/webhooks/twilio/sms", _corpus_params("sms_incoming", Body="Stop", MessageSid="SM" + "1" * 32))
    assert stop.status_code == 200
    identity = session.scalars(select(CustomerIdentity)).one()
    session.refresh(identity)
    assert identity.opted_out is True
    assert events.named(CUSTOMER_UPDATED)
    stop_message = session.scalar(select(Message).where(Message.provider_id == "SM" + "1" * 32))
    assert stop_message.meta["opt_keyword"] == "stop"

    conversation = session.scalars(select(Conversation)).one()
    with pytest.raises(ValidationFailed) as refused:
        reply(conversation.id, None, "Can we help?", channel="sms")
    assert refused.value.code == "opted_out"
    assert "opted out" in str(refused.value)
    assert session.scalar(select(func.count(Message.id)).where(Message.direction == "out")) == 0
    assert standin.requests == []

    twilio_post("/webhooks/twilio/sms", _corpus_params("sms_incoming", Body="START", MessageSid="SM" + "2" * 32))
    session.refresh(identity)
    assert identity.opted_out is False
    message = reply(conversation.id, None, "Welcome back", channel="sms")
    assert message.delivery_status == "queued"


def test_help_keyword_changes_nothing(app, session, sms_channel, twilio_post):
    from app.models import CustomerIdentity

    twilio_post("/webhooks/twilio/sms", _corpus_params("sms_incoming", Body="HELP"))
    assert session.scalars(select(CustomerIdentity)).one().opted_out is False


def test_mms_webhook_answers_at_once_and_the_worker_fetches_media(app, session, sms_channel, twilio_post, standin):
    from app.models import Message
    from app.services.attachments import read_bytes
    from connectors.twilio.media import fetch_due_media

    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM1/Media/ME1"
    url = standin.add_media(path, "image/jpeg", b"\xff\xd8\xff\xe0 a photo of the broken parcel")
    bad = standin.add_media(path.replace("ME1", "ME2"), "application/x-msdownload", b"MZ")
    params = _corpus_params(
        "mms_incoming_with_media",
        NumMedia="2",
        MediaUrl0=url,
        MediaUrl1=bad,
        MediaContentType1="application/x-msdownload",
    )
    response = twilio_post("/webhooks/twilio/sms", params)
    assert response.status_code == 200
    assert standin.requests == []  # nothing was downloaded inside the webhook
    message = session.scalars(select(Message)).one()
    assert message.attachments == []
    assert message.next_attempt_at is not None

    assert twilio_post("/webhooks/twilio/sms", params).status_code == 200  # a retry queues nothing twice
    assert fetch_due_media() == 1
    assert fetch_due_media() == 0
    session.expire_all()
    message = session.scalars(select(Message)).one()
    (attachment,) = message.attachments
    assert (attachment.filename, attachment.content_type) == ("mms-1.jpg", "image/jpeg")
    assert read_bytes(attachment.sha256) == b"\xff\xd8\xff\xe0 a photo of the broken parcel"
    first, second = message.meta["media"]
    assert first["status"] == "stored"
    assert first["attachment_id"] == attachment.id
    assert second["status"] == "failed"
    assert "not accepted" in second["error"]
    assert message.next_attempt_at is None
    assert message.delivery_status == "received"


def test_media_download_outage_is_retried_later(app, session, sms_channel, twilio_post, standin):
    from app.models import Message
    from connectors.twilio.media import fetch_due_media

    url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM9/Media/ME9"
    twilio_post("/webhooks/twilio/sms", _corpus_params("mms_incoming_with_media", MediaUrl0=url))
    app.config["TWILIO_API_BASE"] = "http://127.0.0.1:9"  # nothing listens there
    try:
        assert fetch_due_media() == 1
    finally:
        app.config["TWILIO_API_BASE"] = standin.base_url
    session.expire_all()
    message = session.scalars(select(Message)).one()
    assert "status" not in message.meta["media"][0]
    assert "cannot reach Twilio" in message.meta["media"][0]["last_error"]
    assert message.next_attempt_at is not None
    assert message.attempts == 1


def _queue_sms_reply(session, twilio_post, text: str = "Your parcel is on its way."):
    from app.models import Conversation
    from app.services.reply import reply

    twilio_post("/webhooks/twilio/sms", _corpus_params("sms_incoming"))
    conversation = session.scalars(select(Conversation)).one()
    return reply(conversation.id, None, text)


def test_reply_goes_out_through_the_outbox_as_the_exact_twilio_request(app, session, sms_channel, twilio_post, standin):
    from app.worker.outbox import process_due

    message = _queue_sms_reply(session, twilio_post)
    assert message.channel == "sms"
    assert message.delivery_status == "queued"
    assert process_due(app) == 1
    (request,) = standin.api_requests("Messages")
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.form == {
        "To": ["+14017122661"],
        "From": [SHOP_SMS],
        "Body": ["Your parcel is on its way."],
        "StatusCallback": [f"{PUBLIC_URL}/webhooks/twilio/sms/status?m={message.id}"],
    }
    session.expire_all()
    session.refresh(message)
    assert message.delivery_status == "sent"
    assert message.provider_id.startswith("SM")


def _sent_reply(app, session, twilio_post):
    from app.worker.outbox import process_due

    message = _queue_sms_reply(session, twilio_post)
    process_due(app)
    session.expire_all()
    session.refresh(message)
    return message


def _status(message, status: str, **extra: str) -> dict[str, str]:
    params = _corpus_params(
        "sms_status_callback_sent",
        MessageSid=message.provider_id,
        SmsSid=message.provider_id,
        MessageStatus=status,
        SmsStatus=status,
    )
    params.update(extra)
    return params


def test_status_callbacks_move_delivery_forward_only(app, session, sms_channel, twilio_post, events):
    message = _sent_reply(app, session, twilio_post)
    query = f"m={message.id}"
    assert twilio_post("/webhooks/twilio/sms/status", _status(message, "delivered"), query=query).status_code == 200
    session.refresh(message)
    assert message.delivery_status == "delivered"
    updates = [e for e in events.named(MESSAGE_UPDATED) if e.payload["message"]["id"] == message.id]
    assert updates[-1].payload["message"]["delivery_status"] == "delivered"
    # A late "sent" (callbacks are not ordered) does not move it back.
    twilio_post("/webhooks/twilio/sms/status", _status(message, "sent"), query=query)
    session.refresh(message)
    assert message.delivery_status == "delivered"
    assert message.meta["provider_status"] == "sent"


def test_undelivered_shows_twilios_error_code_to_the_agent(app, session, sms_channel, twilio_post):
    message = _sent_reply(app, session, twilio_post)
    params = _corpus_params(
        "sms_status_callback_undelivered", MessageSid=message.provider_id, SmsSid=message.provider_id
    )
    assert twilio_post("/webhooks/twilio/sms/status", params, query=f"m={message.id}").status_code == 200
    session.refresh(message)
    assert message.delivery_status == "undelivered"
    assert message.error == "Twilio error 30003: unreachable destination handset (off or out of coverage)"
    assert message.meta["provider_error_code"] == "30003"


def test_receipt_without_our_message_id_is_matched_by_sid(app, session, sms_channel, twilio_post):
    message = _sent_reply(app, session, twilio_post)
    twilio_post("/webhooks/twilio/sms/status", _status(message, "failed", ErrorCode="30007"))
    session.refresh(message)
    assert message.delivery_status == "failed"
    assert message.error == "Twilio error 30007: message filtered by the carrier as spam"


def test_receipt_for_unknown_message_is_acknowledged_and_ignored(app, session, sms_channel, twilio_post):
    response = twilio_post("/webhooks/twilio/sms/status", _corpus_params("sms_status_callback_sent"))
    assert response.status_code == 200


def test_forged_status_callback_is_refused(app, session, sms_channel, twilio_post):
    message = _sent_reply(app, session, twilio_post)
    response = twilio_post("/webhooks/twilio/sms/status", _status(message, "delivered"), signature="bm9wZQ==")
    assert response.status_code == 403
    session.refresh(message)
    assert message.delivery_status == "sent"


def test_receipt_that_overtakes_the_outbox_is_applied_after_it(app, session, sms_channel, twilio_post, standin):
    """Twilio may call back before the worker has recorded the send: the receipt must not be lost."""
    from app.models import Message
    from app.services.sms import reconcile_early_receipts
    from app.worker.outbox import claim_batch, deliver

    message = _queue_sms_reply(session, twilio_post)
    (claimed,) = claim_batch()
    # Mid-send: Twilio already reports failure for the sid it is about to return.
    standin_sid = "SM" + "f" * 32
    early = _status(message, "failed", ErrorCode="30003")
    early.update(MessageSid=standin_sid, SmsSid=standin_sid)
    assert twilio_post("/webhooks/twilio/sms/status", early, query=f"m={message.id}").status_code == 200
    session.expire_all()
    assert session.get(Message, message.id).delivery_status == "sending"
    deliver(app, claimed)
    session.expire_all()
    assert session.get(Message, message.id).delivery_status == "sent"
    assert reconcile_early_receipts() == 1
    session.expire_all()
    stored = session.get(Message, message.id)
    assert stored.delivery_status == "failed"
    assert stored.error == "Twilio error 30003: unreachable destination handset (off or out of coverage)"
    assert "early_receipt" not in stored.meta


def test_twilio_refusal_fails_the_reply_with_the_reason(app, session, sms_channel, twilio_post, standin):
    from app.worker.outbox import process_due

    message = _queue_sms_reply(session, twilio_post)
    standin.fail_next(400, 21211, "The 'To' number +14017122661 is not a valid phone number.")
    process_due(app)
    session.expire_all()
    session.refresh(message)
    assert message.delivery_status == "failed"
    assert message.error == "Twilio error 21211: The 'To' number +14017122661 is not a valid phone number."


def test_segments_endpoint(agent_client, anon_client):
    response = agent_client.post("/api/v1/sms/segments", json={"body": "Dzień dobry! " * 6})
    assert response.status_code == 200
    assert response.json["encoding"] == "UCS-2"
    assert response.json["segments"] == 2
    assert response.json["non_gsm_characters"] == ["ń"]
    assert response.json["too_long"] is False
    plain = agent_client.post("/api/v1/sms/segments", json={"body": "Hello"})
    assert (plain.json["encoding"], plain.json["segments"], plain.json["remaining"]) == ("GSM-7", 1, 155)
    assert agent_client.post("/api/v1/sms/segments", json={"text": "x"}).status_code == 422
    assert anon_client.post("/api/v1/sms/segments", json={"body": "x"}).status_code in (401, 403)


def test_the_worker_runs_the_media_job(app, session, sms_channel, twilio_post, standin):
    from app.models import Message
    from app.worker import Worker

    url = standin.add_media(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM7/Media/ME7", "image/png", b"\x89PNG")
    twilio_post("/webhooks/twilio/sms", _corpus_params("mms_incoming_with_media", MediaUrl0=url))
    worker = Worker(app)
    try:
        worker.run_once()
    finally:
        worker.stop()
    session.expire_all()
    (attachment,) = session.scalars(select(Message)).one().attachments
    assert attachment.content_type == "image/png"


def test_concurrent_retries_of_one_sms_store_it_once(app, session, sms_channel):
    """Twilio can retry while the first delivery is still being processed: still exactly one message."""
    import threading

    from app.models import Customer, Message
    from connectors.twilio.signature import compute_signature

    params = _corpus_params("sms_incoming", From="+48601234567")
    signature = compute_signature("12345", f"{PUBLIC_URL}/webhooks/twilio/sms", params)
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def deliver() -> None:
        with app.app_context():
            client = app.test_client()
            barrier.wait()
            response = client.post("/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": signature})
            statuses.append(response.status_code)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 6
    session.expire_all()
    assert _count(session, Message) == 1
    assert _count(session, Customer) == 1
