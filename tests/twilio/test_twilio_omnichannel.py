"""The one rule of omnichannel, over Twilio: an SMS from a known customer's phone joins their email thread."""

from __future__ import annotations

from sqlalchemy import select
from twilio_helpers import ACCOUNT_SID, PUBLIC_URL, SHOP_SMS, form, load_payload


def test_sms_from_known_email_customer_joins_same_timeline_and_reply_goes_out_as_sms(
    app, session, agent_client, twilio_post, standin
):
    from app.models import Channel, Message
    from app.services.channels import create_channel
    from app.services.ingest import ingest
    from app.worker.outbox import process_due
    from connectors.base import Identity, InboundMessage

    email_channel, _ = create_channel("email", "Support mail", address="support@example.com")
    session.add(Channel(kind="sms", name="Shop SMS", address=SHOP_SMS, settings={}))
    session.commit()

    # 1. The customer emails first.
    first = ingest(
        InboundMessage(
            channel="email",
            sender=Identity.parse("email", "Anna.Nowak@example.com"),
            sender_name="Anna Nowak",
            recipient="support@example.com",
            subject="Parcel 123 late",
            text="My parcel has not arrived.",
            provider_id="<m1@example.com>",
        ),
        email_channel,
    )
    customer_id, conversation_id = first.customer.id, first.conversation.id

    # 2. The agent adds her mobile number to her profile (as typed, national format).
    added = agent_client.post(
        f"/api/v1/customers/{customer_id}/identities", json={"kind": "phone", "value": "601 234 567"}
    )
    assert added.status_code == 201, added.json
    assert added.json["value"] == "+48601234567"

    # 3. She texts from that number to the shop's Twilio number.
    params = form(load_payload("sms_incoming_polish_utf8")["body_urlencoded"]).to_dict()
    params.update(From="+48601234567", FromCountry="PL", Body="Dzień dobry, czy paczka już wyszła?")
    assert twilio_post("/webhooks/twilio/sms", params).status_code == 200
    sms = session.scalars(select(Message).where(Message.channel == "sms")).one()
    assert sms.customer_id == customer_id
    assert sms.conversation_id == conversation_id

    timeline = agent_client.get(f"/api/v1/customers/{customer_id}/timeline")
    assert timeline.status_code == 200
    assert [item["channel"] for item in timeline.json["items"]] == ["sms", "email"]

    # 4. The agent answers without picking a channel: the reply follows the customer to SMS.
    # (In the app every request has its own session; here the test client shares the test's, so start fresh.)
    session.expire_all()
    detail = agent_client.get(f"/api/v1/conversations/{conversation_id}")
    assert detail.json["default_reply_channel"] == "sms"
    sent = agent_client.post(f"/api/v1/conversations/{conversation_id}/messages", json={"body": "Tak, jutro u Pani."})
    assert sent.status_code == 201, sent.json
    assert sent.json["channel"] == "sms"
    assert process_due(app) == 1
    (request,) = standin.api_requests("Messages")
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.form["To"] == ["+48601234567"]
    assert request.form["From"] == [SHOP_SMS]
    assert request.form["Body"] == ["Tak, jutro u Pani."]
    assert request.form["StatusCallback"] == [f"{PUBLIC_URL}/webhooks/twilio/sms/status?m={sent.json['id']}"]
