"""Voice end to end: TwiML routing, the live call item, voicemail, missed calls, wrap-up, click-to-call."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select
from twilio_helpers import ACCOUNT_SID, PUBLIC_URL, SHOP_VOICE, payload_params, twiml_of
from twilio_standin import TwilioStandIn

from app.events import CONVERSATION_UPDATED, MESSAGE_UPDATED, WRAPUP_REQUESTED

CALL_SID = "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
CALLER = "+14158675310"
ALWAYS_OPEN = None
NEVER_OPEN = {"timezone": "UTC", "days": {}}


@pytest.fixture
def make_voice_channel(session):
    from app.services.channels import create_channel

    def _make(business_hours=ALWAYS_OPEN, **settings):
        channel, _ = create_channel(
            "voice", "Shop line", address=SHOP_VOICE, settings=settings, business_hours=business_hours
        )
        return channel

    return _make


@pytest.fixture
def agents(make_user, session):
    """Two reachable, available agents and one who is away."""
    anna = make_user("agent", name="Anna", phone="+48601234567")
    bob = make_user("agent", name="Bob")
    bob.client_identity = "bob"
    away = make_user("agent", name="Away", phone="+48601234568")
    away.available = False
    session.commit()
    return anna, bob, away


def _call(session):
    from app.models import Call

    session.expire_all()
    return session.scalars(select(Call)).one()


def _leg(status: str, **extra: str) -> dict[str, str]:
    """A status callback for an agent's (child) leg of the inbound call."""
    params = {
        "CallSid": "CA" + "a" * 32,
        "ParentCallSid": CALL_SID,
        "AccountSid": ACCOUNT_SID,
        "From": CALLER,
        "To": "+48601234567",
        "CallStatus": status,
        "Direction": "outbound-dial",
        "ApiVersion": "2010-04-01",
    }
    params.update(extra)
    return params


def test_call_in_hours_rings_available_agents_and_appears_ringing(
    app, session, make_voice_channel, agents, twilio_post, events
):
    from app.models import Conversation, Message

    anna, bob, _away = agents
    make_voice_channel(greeting="Thanks for calling the shop.")
    root = twiml_of(twilio_post("/webhooks/twilio/voice", payload_params("voice_incoming_call")))
    assert [child.tag for child in root] == ["Say", "Dial"]
    assert root[0].text == "Thanks for calling the shop."
    dial = root.find("Dial")
    assert dial.get("action") == f"{PUBLIC_URL}/webhooks/twilio/voice/dial"
    assert [(c.tag, c.text, parse_qs(urlsplit(c.get("statusCallback")).query)["agent"]) for c in dial] == [
        ("Number", "+48601234567", [str(anna.id)]),
        ("Client", "bob", [str(bob.id)]),
    ]
    call = _call(session)
    assert (call.status, call.direction, call.from_number, call.to_number) == ("ringing", "in", CALLER, SHOP_VOICE)
    message = session.get(Message, call.message_id)
    assert (message.kind, message.channel, message.direction) == ("call", "voice", "in")
    assert message.text == f"Call from {CALLER}: ringing"
    conversation = session.get(Conversation, message.conversation_id)
    assert conversation.origin_channel == "voice"
    assert conversation.status == "open"
    update = events.named(MESSAGE_UPDATED)[-1].payload["message"]
    assert update["call"]["status"] == "ringing"
    assert update["kind"] == "call"

    # A retried webhook answers the same and stores nothing new.
    again = twiml_of(twilio_post("/webhooks/twilio/voice", payload_params("voice_incoming_call")))
    assert [child.tag for child in again] == ["Say", "Dial"]
    assert session.scalar(select(func.count(Message.id))) == 1


def test_answered_call_goes_live_then_completes_and_asks_its_agent_for_wrap_up(
    app, session, make_voice_channel, agents, twilio_post, events
):
    from app.models import Conversation

    anna, _bob, _away = agents
    make_voice_channel()
    twilio_post("/webhooks/twilio/voice", payload_params("voice_incoming_call"))
    query = f"agent={anna.id}"
    assert twilio_post("/webhooks/twilio/voice/agent-status", _leg("in-progress"), query=query).status_code == 200
    call = _call(session)
    assert (call.status, call.agent_id) == ("in-progress", anna.id)
    assert (
        events.named(MESSAGE_UPDATED)[-1].payload["message"]["text"]
        == f"Call from {CALLER}: in progress, answered by Anna"
    )

    twilio_post("/webhooks/twilio/voice/agent-status", _leg("completed", CallDuration="47"), query=query)
    call = _call(session)
    assert (call.status, call.duration, call.agent_id) == ("completed", 47, anna.id)
    assert call.ended_at is not None
    (wrapup,) = events.named(WRAPUP_REQUESTED)
    assert wrapup.user_ids == (anna.id,)
    assert wrapup.all_agents is False
    assert wrapup.private is True
    assert wrapup.conversation_id is None  # not broadcast to the conversation's other viewers
    conversation = session.scalars(select(Conversation)).one()
    assert wrapup.payload["conversation_id"] == conversation.id
    assert wrapup.payload["call_id"] == call.id
    assert conversation.call_back is False
    assert conversation.first_response_at is not None

    # The dial action and the call's own completion arrive too: nothing changes, no second wrap-up.
    dial = twiml_of(
        twilio_post(
            "/webhooks/twilio/voice/dial",
            payload_params(
                "voice_incoming_call", CallStatus="in-progress", DialCallStatus="completed", DialCallDuration="47"
            ),
        )
    )
    assert [child.tag for child in dial] == ["Hangup"]
    twilio_post("/webhooks/twilio/voice/status", payload_params("voice_status_callback_completed"))
    assert len(events.named(WRAPUP_REQUESTED)) == 1
    assert _call(session).status == "completed"


def test_other_agents_unanswered_legs_do_not_end_the_call(app, session, make_voice_channel, agents, twilio_post):
    anna, bob, _away = agents
    make_voice_channel()
    twilio_post("/webhooks/twilio/voice", payload_params("voice_incoming_call"))
    twilio_post("/webhooks/twilio/voice/agent-status", _leg("in-progress"), query=f"agent={anna.id}")
    twilio_post(
        "/webhooks/twilio/voice/agent-status", _leg("canceled", CallSid="CA" + "b" * 32), query=f"agent={bob.id}"
    )
    assert _call(session).status == "in-progress"


def test_agent_on_a_call_is_not_rung_for_the_next_one(app, session, make_voice_channel, agents, twilio_post):
    anna, _bob, _away = agents
    make_voice_channel()
    twilio_post("/webhooks/twilio/voice", payload_params("voice_incoming_call"))
    twilio_post("/webhooks/twilio/voice/agent-status", _leg("in-progress"), query=f"agent={anna.id}")
    second = twiml_of(
        twilio_post(
            "/webhooks/twilio/voice",
            payload_params("voice_incoming_call", CallSid="CA" + "2" * 32, From="+14158675311"),
        )
    )
    assert [(c.tag, c.text) for c in second.find("Dial")] == [("Client", "bob")]


def test_outside_business_hours_goes_straight_to_voicemail(
    app, session, make_voice_channel, agents, twilio_post, events
):
    from app.models import Conversation

    make_voice_channel(NEVER_OPEN, language="pl")
    root = twiml_of(twilio_post("/webhooks/twilio/voice", payload_params("voice_incoming_call")))
    assert [child.tag for child in root] == ["Say", "Say", "Record", "Say", "Hangup"]
    assert root[0].get("language") == "pl-PL"
    assert root.find("Dial") is None

    after = twiml_of(twilio_post("/webhooks/twilio/voice/recording", payload_params("voice_record_action")))
    assert [child.tag for child in after] == ["Say", "Hangup"]
    call = _call(session)
    assert call.status == "voicemail"
    assert call.voicemail is True
    assert call.recording_url.endswith("/Recordings/REXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX")
    assert call.recording_duration == 14
    conversation = session.scalars(select(Conversation)).one()
    assert conversation.call_back is True
    assert conversation.status == "open"
    assert any(e.payload["conversation"]["call_back"] for e in events.named(CONVERSATION_UPDATED))

    twilio_post("/webhooks/twilio/voice/recording-status", payload_params("voice_recording_status_callback"))
    assert _call(session).recording_sid == "REXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
    twilio_post("/webhooks/twilio/voice/transcription", payload_params("voice_transcribe_callback"))
    call = _call(session)
    assert call.transcription == "Hi, this is a test voicemail, please call me back."
    message_text = events.named(MESSAGE_UPDATED)[-1].payload["message"]["text"]
    assert message_text == f"Call from {CALLER}: voicemail (0:14): Hi, this is a test voicemail, please call me back."
    # The caller hanging up after the voicemail keeps it a voicemail.
    twilio_post("/webhooks/twilio/voice/status", payload_params("voice_status_callback_completed"))
    assert _call(session).status == "voicemail"
    assert not events.named(WRAPUP_REQUESTED)


def test_unanswered_ring_goes_to_voicemail_and_a_hang_up_is_a_missed_call(
    app, session, make_voice_channel, agents, twilio_post
):
    from app.models import Conversation

    make_voice_channel(ring_timeout=15)
    twilio_post("/webhooks/twilio/voice", payload_params("voice_incoming_call"))
    after = twiml_of(
        twilio_post(
            "/webhooks/twilio/voice/dial",
            payload_params("voice_incoming_call", CallStatus="in-progress", DialCallStatus="no-answer"),
        )
    )
    assert "Record" in [child.tag for child in after]
    assert _call(session).status == "ringing"
    twilio_post("/webhooks/twilio/voice/status", payload_params("voice_status_callback_completed"))
    call = _call(session)
    assert call.status == "missed"
    assert call.ended_at is not None
    conversation = session.scalars(select(Conversation)).one()
    assert conversation.call_back is True
    assert conversation.status == "open"


def test_missed_call_reopens_a_resolved_conversation_flagged_call_back(
    app, session, make_voice_channel, agents, twilio_post
):
    from app.models import Conversation

    make_voice_channel()
    twilio_post("/webhooks/twilio/voice", payload_params("voice_incoming_call"))
    conversation = session.scalars(select(Conversation)).one()
    conversation.status = "resolved"
    conversation.resolved_at = dt.datetime.now(dt.UTC)
    session.commit()
    twilio_post(
        "/webhooks/twilio/voice/dial",
        payload_params("voice_incoming_call", CallStatus="completed", DialCallStatus="no-answer"),
    )
    session.expire_all()
    conversation = session.scalars(select(Conversation)).one()
    assert (conversation.status, conversation.call_back) == ("open", True)
    assert _call(session).status == "missed"


def test_nobody_available_waits_in_queue_then_voicemail(app, session, make_voice_channel, twilio_post):
    make_voice_channel(queue="support", queue_timeout=30)
    root = twiml_of(twilio_post("/webhooks/twilio/voice", payload_params("voice_incoming_call")))
    assert root.find("Enqueue").text == "support"
    hold = twiml_of(
        twilio_post("/webhooks/twilio/voice/queue-wait", payload_params("voice_incoming_call", QueueTime="10"))
    )
    assert [child.tag for child in hold] == ["Say", "Pause"]
    leave = twiml_of(
        twilio_post("/webhooks/twilio/voice/queue-wait", payload_params("voice_incoming_call", QueueTime="31"))
    )
    assert [child.tag for child in leave] == ["Leave"]
    voicemail = twiml_of(
        twilio_post("/webhooks/twilio/voice/queue", payload_params("voice_incoming_call", QueueResult="leave"))
    )
    assert "Record" in [child.tag for child in voicemail]


def test_call_to_an_unknown_number_is_turned_away_and_stores_nothing(app, session, twilio_post):
    from app.models import Message

    root = twiml_of(twilio_post("/webhooks/twilio/voice", payload_params("voice_incoming_call")))
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert session.scalar(select(func.count(Message.id))) == 0


def test_unsigned_voice_webhooks_are_refused(app, session, make_voice_channel, twilio_post):
    from app.models import Message

    make_voice_channel()
    for path in (
        "/voice",
        "/voice/status",
        "/voice/dial",
        "/voice/recording",
        "/voice/transcription",
        "/voice/agent-status",
        "/voice/bridge",
        "/voice/outbound-status",
    ):
        response = twilio_post(f"/webhooks/twilio{path}", payload_params("voice_incoming_call"), signature="")
        assert response.status_code == 403, path
    assert session.scalar(select(func.count(Message.id))) == 0


def test_the_agent_in_the_signed_url_cannot_be_swapped(app, session, make_voice_channel, agents, twilio_post):
    from app.services.calls import call_answered  # noqa: F401 - the route is what is under test

    anna, bob, _ = agents
    make_voice_channel()
    twilio_post("/webhooks/twilio/voice", payload_params("voice_incoming_call"))
    from connectors.twilio.signature import compute_signature

    signature = compute_signature(
        "12345", f"{PUBLIC_URL}/webhooks/twilio/voice/agent-status?agent={anna.id}", _leg("in-progress")
    )
    response = app.test_client().post(
        f"/webhooks/twilio/voice/agent-status?agent={bob.id}",
        data=_leg("in-progress"),
        headers={"X-Twilio-Signature": signature},
    )
    assert response.status_code == 403
    assert _call(session).agent_id is None


def test_withheld_caller_gets_their_own_customer(app, session, make_voice_channel, twilio_post):
    from app.models import CustomerIdentity

    make_voice_channel()
    twiml_of(twilio_post("/webhooks/twilio/voice", payload_params("voice_incoming_call", From="anonymous")))
    identity = session.scalars(select(CustomerIdentity)).one()
    assert (identity.kind, identity.value, identity.verified) == ("external", f"twilio-withheld:{CALL_SID}", False)


# ------------------------------------------------------------------------------------------ click-to-call


@pytest.fixture
def customer_conversation(app, session, make_voice_channel, twilio_post):
    """A customer who called before (so they have a phone identity and a conversation)."""
    from app.models import Call, Conversation

    make_voice_channel()
    twilio_post("/webhooks/twilio/voice", payload_params("voice_incoming_call"))
    twilio_post(
        "/webhooks/twilio/voice/dial",
        payload_params("voice_incoming_call", CallStatus="completed", DialCallStatus="no-answer"),
    )
    session.expire_all()
    assert session.scalars(select(Call)).one().status == "missed"
    return session.scalars(select(Conversation)).one()


def test_click_to_call_rings_the_agent_then_bridges_to_the_customer(
    app, session, make_user, customer_conversation, twilio_post, standin: TwilioStandIn, events
):
    from app.models import Call, Message
    from tests.conftest import ApiClient

    agent = make_user("agent", name="Celina", phone="+48 601 234 569")
    api = ApiClient(app.test_client())
    assert api.login(agent.email).status_code == 200
    response = api.post(f"/api/v1/conversations/{customer_conversation.id}/calls", json={})
    assert response.status_code == 201, response.json
    sid = response.json["call"]["sid"]
    assert response.json["call"]["status"] == "queued"
    assert response.json["message"]["kind"] == "call"
    assert response.json["message"]["direction"] == "out"

    (request,) = standin.api_requests("Calls")
    assert request.form["To"] == ["+48601234569"]  # the profile's number, normalised to E.164
    assert request.form["From"] == [SHOP_VOICE]
    bridge_url = request.form["Url"][0]
    assert bridge_url == (
        f"{PUBLIC_URL}/webhooks/twilio/voice/bridge?conversation={customer_conversation.id}&agent={agent.id}&to=%2B14158675310"
    )
    assert request.form["StatusCallback"] == [f"{PUBLIC_URL}/webhooks/twilio/voice/status"]

    # Twilio rings the agent; when they pick up it fetches the bridge TwiML from the URL it was given.
    leg = {
        "CallSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": SHOP_VOICE,
        "To": "+48601234569",
        "CallStatus": "in-progress",
        "Direction": "outbound-api",
        "ApiVersion": "2010-04-01",
    }
    query = urlsplit(bridge_url).query
    root = twiml_of(twilio_post("/webhooks/twilio/voice/bridge", leg, query=query))
    assert [child.tag for child in root] == ["Say", "Dial"]
    dial = root.find("Dial")
    assert dial.get("callerId") == SHOP_VOICE
    assert dial.find("Number").text == CALLER
    assert _call_by_sid(session, sid).status == "ringing"

    customer_leg = {**leg, "CallSid": "CA" + "c" * 32, "ParentCallSid": sid, "To": CALLER, "Direction": "outbound-dial"}
    twilio_post("/webhooks/twilio/voice/outbound-status", {**customer_leg, "CallStatus": "in-progress"})
    call = _call_by_sid(session, sid)
    assert (call.status, call.agent_id) == ("in-progress", agent.id)
    twilio_post(
        "/webhooks/twilio/voice/outbound-status", {**customer_leg, "CallStatus": "completed", "CallDuration": "95"}
    )
    call = _call_by_sid(session, sid)
    assert (call.status, call.duration) == ("completed", 95)
    assert session.get(Message, call.message_id).text == f"Outbound call to {CALLER}: 1:35, answered by Celina"
    (wrapup,) = events.named(WRAPUP_REQUESTED)
    assert wrapup.user_ids == (agent.id,)
    session.refresh(customer_conversation)
    assert customer_conversation.call_back is False  # the customer was reached
    # The rest of Twilio's callbacks change nothing.
    twilio_post(
        "/webhooks/twilio/voice/bridge-action", {**leg, "DialCallStatus": "completed", "DialCallDuration": "95"}
    )
    twilio_post("/webhooks/twilio/voice/status", {**leg, "CallStatus": "completed", "CallDuration": "110"})
    assert len(events.named(WRAPUP_REQUESTED)) == 1
    assert session.scalar(select(func.count(Call.id))) == 2


def _call_by_sid(session, sid):
    from app.models import Call

    session.expire_all()
    return session.scalars(select(Call).where(Call.provider_sid == sid)).one()


def test_click_to_call_customer_not_answering(app, session, make_user, customer_conversation, twilio_post, standin):
    from app.services.calls import start_click_to_call

    agent = make_user("agent", phone="+48601234569")
    call = start_click_to_call(customer_conversation.id, agent, settings=app.config)
    leg = {
        "CallSid": call.provider_sid,
        "AccountSid": ACCOUNT_SID,
        "From": SHOP_VOICE,
        "To": "+48601234569",
        "CallStatus": "in-progress",
        "Direction": "outbound-api",
    }
    after = twiml_of(twilio_post("/webhooks/twilio/voice/bridge-action", {**leg, "DialCallStatus": "no-answer"}))
    assert [child.tag for child in after] == ["Say", "Hangup"]
    assert _call_by_sid(session, call.provider_sid).status == "no-answer"


def test_click_to_call_needs_the_agents_phone(app, session, customer_conversation, agent_client, standin):
    response = agent_client.post(f"/api/v1/conversations/{customer_conversation.id}/calls", json={})
    assert response.status_code == 422
    assert response.json["error"]["code"] == "no_agent_phone"
    assert standin.requests == []


def test_click_to_call_reports_twilio_refusal(app, session, make_user, customer_conversation, standin):
    from app.models import Call
    from tests.conftest import ApiClient

    agent = make_user("agent", phone="+48601234569")
    api = ApiClient(app.test_client())
    api.login(agent.email)
    standin.fail_next(400, 21215, "Geo Permission configuration is not permitting call")
    response = api.post(f"/api/v1/conversations/{customer_conversation.id}/calls", json={})
    assert response.status_code == 422
    assert response.json["error"]["code"] == "call_failed"
    assert "21215" in response.json["error"]["message"]
    assert session.scalar(select(func.count(Call.id))) == 1  # only the earlier inbound call


def test_bridge_webhook_that_overtakes_the_api_still_logs_the_call(
    app, session, make_user, customer_conversation, twilio_post
):
    from app.models import Call

    agent = make_user("agent", phone="+48601234569")
    sid = "CA" + "d" * 32
    leg = {
        "CallSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": SHOP_VOICE,
        "To": "+48601234569",
        "CallStatus": "in-progress",
        "Direction": "outbound-api",
    }
    query = f"conversation={customer_conversation.id}&agent={agent.id}&to=%2B14158675310"
    twiml_of(twilio_post("/webhooks/twilio/voice/bridge", leg, query=query))
    from app.services.calls import record_outbound_call

    call = record_outbound_call(sid, customer_conversation.id, agent.id, CALLER, customer_conversation.channel_id)
    assert call.provider_sid == sid
    assert session.scalar(select(func.count(Call.id)).where(Call.direction == "out")) == 1
