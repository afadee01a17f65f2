"""Answering queued callers: the waiting list, ringing the agent with <Dial><Queue>, and the call's live item.

Webhooks carry real signatures over the exact URLs the app gave Twilio; the call that answers the queue goes
through the real twilio client to the local REST stand-in, and its TwiML is parsed as XML.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from twilio_helpers import ACCOUNT_SID, PUBLIC_URL, SHOP_VOICE, payload_params, twiml_of
from twilio_standin import RecordedRequest, TwilioStandIn

from app.events import CALL_QUEUE_UPDATED, MESSAGE_UPDATED, WRAPUP_REQUESTED
from tests.conftest import ApiClient

CALL_SID = "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
SECOND_SID = "CA" + "2" * 32
CALLER = "+14158675310"
SECOND_CALLER = "+14158675311"
QUEUE_SID = "QU" + "5" * 32


@pytest.fixture
def voice_channel(session):
    from app.services.channels import create_channel

    channel, _ = create_channel(
        "voice", "Shop line", address=SHOP_VOICE, settings={"queue": "support", "queue_timeout": 300}
    )
    return channel


def _params(**changes: str) -> dict[str, str]:
    return payload_params("voice_incoming_call", **changes)


def _stamp(at: dt.datetime) -> str:
    return email.utils.format_datetime(at.astimezone(dt.UTC), usegmt=True)


def _enqueue(twilio_post, sid: str = CALL_SID, caller: str = CALLER, queue_time: str = "0") -> None:
    """The call arrives with nobody available: Twilio enqueues it and requests the wait URL."""
    root = twiml_of(twilio_post("/webhooks/twilio/voice", _params(CallSid=sid, From=caller)))
    assert root.find("Enqueue").text == "support"
    hold = twiml_of(
        twilio_post(
            "/webhooks/twilio/voice/queue-wait",
            _params(CallSid=sid, From=caller, CallStatus="in-progress", QueueSid=QUEUE_SID, QueueTime=queue_time),
        )
    )
    assert [child.tag for child in hold] == ["Say", "Pause"]


def _call(session, sid: str = CALL_SID):
    from app.models import Call

    session.expire_all()
    return session.scalars(select(Call).where(Call.provider_sid == sid)).one()


def _login(app, user) -> ApiClient:
    api = ApiClient(app.test_client())
    assert api.login(user.email).status_code == 200
    return api


def _signed_path(url: str) -> tuple[str, str]:
    """Split an absolute URL the app gave Twilio into the path and query Twilio will request (and sign)."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL
    return parts.path, parts.query


def _answer_twiml(request: RecordedRequest) -> ET.Element:
    return ET.fromstring(request.field("Twiml") or "")


def _agent_leg(request: RecordedRequest, sid: str, status: str, **extra: str) -> dict[str, str]:
    """A status callback for the agent's call that answers the queue (an outbound-api call)."""
    params = {
        "CallSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": request.field("From") or "",
        "To": request.field("To") or "",
        "CallStatus": status,
        "Direction": "outbound-api",
        "ApiVersion": "2010-04-01",
    }
    params.update(extra)
    return params


def test_a_queued_caller_is_listed_and_announced_to_agents(app, session, voice_channel, make_user, twilio_post, events):
    from app.models import Conversation, Message

    _enqueue(twilio_post)
    call = _call(session)
    conversation = session.scalars(select(Conversation)).one()
    assert session.get(Message, call.message_id).text == f"Call from {CALLER}: waiting in queue"
    (joined,) = events.named(CALL_QUEUE_UPDATED)
    assert joined.all_agents is True
    assert joined.private is True
    assert joined.conversation_id is None
    assert joined.payload["waiting"] is True
    assert joined.payload["entry"]["call_id"] == call.id
    assert joined.payload["entry"]["from"] == CALLER
    assert joined.payload["entry"]["conversation_id"] == conversation.id

    # Twilio asks for the wait URL again every few seconds: the caller is announced once.
    twilio_post(
        "/webhooks/twilio/voice/queue-wait",
        _params(CallStatus="in-progress", QueueSid=QUEUE_SID, QueueTime="15"),
    )
    assert len(events.named(CALL_QUEUE_UPDATED)) == 1

    api = _login(app, make_user("agent"))
    response = api.get("/api/v1/calls/queue")
    assert response.status_code == 200, response.json
    assert response.json["count"] == 1
    (entry,) = response.json["items"]
    assert entry["call_id"] == call.id
    assert entry["sid"] == CALL_SID
    assert entry["from"] == CALLER
    assert entry["queue"] == "support"
    assert entry["position"] == 1
    assert entry["customer"]["id"] == conversation.customer_id
    assert entry["conversation_number"] == conversation.number
    assert entry["answering"] is None
    assert entry["wait_seconds"] >= 0
    assert entry["entered_at"].endswith("Z")


def test_answering_rings_the_agent_dials_the_queue_and_logs_the_call_as_theirs(
    app, session, voice_channel, make_user, twilio_post, standin: TwilioStandIn, events
):
    from app.models import Conversation, Message

    _enqueue(twilio_post)
    anna = make_user("agent", name="Anna", phone="+48 601 234 567")
    api = _login(app, anna)
    response = api.post("/api/v1/calls/queue/answer", json={})
    assert response.status_code == 202, response.json
    assert response.json["call"]["sid"] == CALL_SID
    assert response.json["entry"]["answering"]["agent_id"] == anna.id
    leg_sid = response.json["agent_call_sid"]

    # The exact request Twilio receives: ring Anna from the shop's number, then run the inline TwiML.
    (request,) = standin.api_requests("Calls")
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert request.form["To"] == ["+48601234567"]  # the profile's number, in E.164
    assert request.form["From"] == [SHOP_VOICE]
    assert "Url" not in request.form
    assert request.form["Timeout"] == ["30"]
    assert request.form["StatusCallbackMethod"] == ["POST"]
    assert request.form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    status_path, status_query = _signed_path(request.field("StatusCallback"))
    assert status_path == "/webhooks/twilio/voice/queue-answer-status"
    twiml = _answer_twiml(request)
    assert twiml.tag == "Response"
    assert [child.tag for child in twiml] == ["Say", "Dial"]
    dial = twiml.find("Dial")
    assert dial.get("action") == f"{PUBLIC_URL}/webhooks/twilio/voice/queue-answer"
    assert dial.get("method") == "POST"
    (queue,) = list(dial)
    assert (queue.tag, queue.text, queue.get("method")) == ("Queue", "support", "POST")
    bridge_path, bridge_query = _signed_path(queue.get("url"))
    assert bridge_path == "/webhooks/twilio/voice/queue-bridge"
    reservation = parse_qs(bridge_query)
    call = _call(session)
    assert reservation["agent"] == [str(anna.id)]
    assert reservation["call"] == [str(call.id)]
    assert parse_qs(status_query) == reservation

    # Colleagues see Anna answering; the next Answer finds nobody else to take.
    listed = api.get("/api/v1/calls/queue").json["items"]
    assert listed[0]["answering"] == {"agent_id": anna.id, "name": "Anna", "since": listed[0]["answering"]["since"]}
    assert events.named(CALL_QUEUE_UPDATED)[-1].payload["entry"]["answering"]["agent_id"] == anna.id
    bob = _login(app, make_user("agent", phone="+48601234568"))
    busy = bob.post("/api/v1/calls/queue/answer", json={})
    assert busy.status_code == 409
    assert busy.json["error"]["code"] == "queue_empty"
    assert len(standin.api_requests("Calls")) == 1

    # Anna picks up; her leg dials the queue and Twilio fetches the <Queue> url for the dequeued caller.
    leg = _agent_leg(request, leg_sid, "in-progress")
    assert twilio_post(status_path, leg, query=status_query).status_code == 200
    assert _call(session).status == "ringing"
    bridged_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    connected = twiml_of(
        twilio_post(
            bridge_path,
            _params(
                CallStatus="in-progress",
                QueueSid=QUEUE_SID,
                QueueTime="42",
                DequeingCallSid=leg_sid,
                Timestamp=_stamp(bridged_at),
            ),
            query=bridge_query,
        )
    )
    assert [child.tag for child in connected] == ["Say"]  # what the caller hears just before the bridge
    call = _call(session)
    assert (call.status, call.agent_id) == ("in-progress", anna.id)
    assert session.get(Message, call.message_id).text == f"Call from {CALLER}: in progress, answered by Anna"
    assert events.named(MESSAGE_UPDATED)[-1].payload["message"]["call"]["status"] == "in-progress"
    left = events.named(CALL_QUEUE_UPDATED)[-1].payload
    assert (left["call_id"], left["waiting"], left["result"]) == (call.id, False, "bridged")
    assert api.get("/api/v1/calls/queue").json["items"] == []

    # Anna hangs up after 75 s: the call is completed, with the talk time, and she gets the wrap-up.
    twilio_post(
        status_path,
        _agent_leg(
            request, leg_sid, "completed", CallDuration="80", Timestamp=_stamp(bridged_at + dt.timedelta(seconds=75))
        ),
        query=status_query,
    )
    call = _call(session)
    assert (call.status, call.agent_id, call.duration) == ("completed", anna.id, 75)
    assert session.get(Message, call.message_id).text == f"Call from {CALLER}: 1:15, answered by Anna"
    (wrapup,) = events.named(WRAPUP_REQUESTED)
    assert wrapup.user_ids == (anna.id,)
    assert wrapup.payload["call_id"] == call.id
    conversation = session.scalars(select(Conversation)).one()
    assert conversation.call_back is False
    assert conversation.first_response_at is not None

    # The rest of Twilio's callbacks change nothing: the agent's dial action, the caller's queue action, status.
    after = twiml_of(
        twilio_post(
            "/webhooks/twilio/voice/queue-answer",
            _agent_leg(request, leg_sid, "in-progress", DialCallStatus="completed", DialCallDuration="75"),
        )
    )
    assert [child.tag for child in after] == ["Hangup"]
    caller_done = twiml_of(
        twilio_post("/webhooks/twilio/voice/queue", _params(CallStatus="in-progress", QueueResult="bridged"))
    )
    assert [child.tag for child in caller_done] == ["Hangup"]
    twilio_post("/webhooks/twilio/voice/status", _params(CallStatus="completed", CallDuration="130"))
    call = _call(session)
    assert (call.status, call.duration) == ("completed", 75)
    assert len(events.named(WRAPUP_REQUESTED)) == 1


def test_a_twilio_client_identity_is_rung_as_client(
    app, session, voice_channel, make_user, twilio_post, standin: TwilioStandIn
):
    _enqueue(twilio_post)
    bob = make_user("agent", name="Bob")
    bob.client_identity = "bob-desk"
    session.commit()
    response = _login(app, bob).post("/api/v1/calls/queue/answer", json={})
    assert response.status_code == 202, response.json
    assert response.json["ringing"] == "client:bob-desk"
    (request,) = standin.api_requests("Calls")
    assert request.form["To"] == ["client:bob-desk"]
    assert request.form["From"] == [SHOP_VOICE]
    assert _answer_twiml(request).find("Dial/Queue").text == "support"


def test_an_unanswered_agent_phone_frees_the_caller_for_a_colleague(
    app, session, voice_channel, make_user, twilio_post, standin: TwilioStandIn, events
):
    _enqueue(twilio_post)
    anna = _login(app, make_user("agent", name="Anna", phone="+48601234567"))
    response = anna.post("/api/v1/calls/queue/answer", json={})
    assert response.status_code == 202, response.json
    (request,) = standin.api_requests("Calls")
    status_path, status_query = _signed_path(request.field("StatusCallback"))
    twilio_post(status_path, _agent_leg(request, response.json["agent_call_sid"], "no-answer"), query=status_query)

    (entry,) = anna.get("/api/v1/calls/queue").json["items"]
    assert entry["answering"] is None
    update = events.named(CALL_QUEUE_UPDATED)[-1].payload
    assert update["waiting"] is True
    assert update["entry"]["answering"] is None
    assert _call(session).status == "ringing"
    bob = _login(app, make_user("agent", phone="+48601234568"))
    assert bob.post("/api/v1/calls/queue/answer", json={"call_id": entry["call_id"]}).status_code == 202
    assert [r.field("To") for r in standin.api_requests("Calls")] == ["+48601234567", "+48601234568"]


def test_twilio_bridging_another_caller_than_reserved_is_recorded_as_it_happened(
    app, session, voice_channel, make_user, twilio_post, standin: TwilioStandIn
):
    """Two agents answer two callers; the second agent picks up first and Twilio gives them the first caller."""
    _enqueue(twilio_post)
    _enqueue(twilio_post, SECOND_SID, SECOND_CALLER)
    anna_user = make_user("agent", name="Anna", phone="+48601234567")
    bob_user = make_user("agent", name="Bob", phone="+48601234568")
    anna, bob = _login(app, anna_user), _login(app, bob_user)
    first = anna.post("/api/v1/calls/queue/answer", json={})
    second = bob.post("/api/v1/calls/queue/answer", json={})
    assert (first.json["call"]["sid"], second.json["call"]["sid"]) == (CALL_SID, SECOND_SID)
    anna_request, bob_request = standin.api_requests("Calls")

    bob_bridge = urlsplit(_answer_twiml(bob_request).find("Dial/Queue").get("url"))
    twilio_post(
        bob_bridge.path,
        _params(CallStatus="in-progress", QueueSid=QUEUE_SID, DequeingCallSid=second.json["agent_call_sid"]),
        query=bob_bridge.query,
    )
    assert (_call(session).status, _call(session).agent_id) == ("in-progress", bob_user.id)
    # The second caller, reserved for Bob, is free again; Anna still holds nothing else.
    (waiting,) = anna.get("/api/v1/calls/queue").json["items"]
    assert (waiting["sid"], waiting["answering"]) == (SECOND_SID, None)

    anna_bridge = urlsplit(_answer_twiml(anna_request).find("Dial/Queue").get("url"))
    twilio_post(
        anna_bridge.path,
        _params(
            CallSid=SECOND_SID,
            From=SECOND_CALLER,
            CallStatus="in-progress",
            QueueSid=QUEUE_SID,
            DequeingCallSid=first.json["agent_call_sid"],
        ),
        query=anna_bridge.query,
    )
    second_call = _call(session, SECOND_SID)
    assert (second_call.status, second_call.agent_id) == ("in-progress", anna_user.id)
    assert anna.get("/api/v1/calls/queue").json["items"] == []


def test_callers_leaving_the_queue_disappear_from_it(app, session, voice_channel, make_user, twilio_post, events):
    _enqueue(twilio_post)
    _enqueue(twilio_post, SECOND_SID, SECOND_CALLER)
    api = _login(app, make_user("agent", phone="+48601234567"))
    assert [item["position"] for item in api.get("/api/v1/calls/queue").json["items"]] == [1, 2]

    # The first waited past queue_timeout: <Leave>, then voicemail.
    leave = twiml_of(
        twilio_post(
            "/webhooks/twilio/voice/queue-wait", _params(CallStatus="in-progress", QueueSid=QUEUE_SID, QueueTime="301")
        )
    )
    assert [child.tag for child in leave] == ["Leave"]
    update = events.named(CALL_QUEUE_UPDATED)[-1].payload
    assert (update["call_id"], update["waiting"], update["result"]) == (_call(session).id, False, "leave")
    voicemail = twiml_of(
        twilio_post("/webhooks/twilio/voice/queue", _params(CallStatus="in-progress", QueueResult="leave"))
    )
    assert "Record" in [child.tag for child in voicemail]
    (entry,) = api.get("/api/v1/calls/queue").json["items"]
    assert (entry["sid"], entry["position"]) == (SECOND_SID, 1)

    # The second hangs up while waiting: a missed call, gone from the queue.
    twilio_post(
        "/webhooks/twilio/voice/queue",
        _params(CallSid=SECOND_SID, From=SECOND_CALLER, CallStatus="completed", QueueResult="hangup"),
    )
    assert _call(session, SECOND_SID).status == "missed"
    assert events.named(CALL_QUEUE_UPDATED)[-1].payload["waiting"] is False
    assert api.get("/api/v1/calls/queue").json["items"] == []
    assert api.post("/api/v1/calls/queue/answer", json={}).json["error"]["code"] == "queue_empty"


def test_a_stale_queue_entry_is_not_listed(app, session, voice_channel, twilio_post):
    from app.models import utcnow
    from app.services.calls import queue_entered, queue_entries

    twilio_post("/webhooks/twilio/voice", _params())
    # Twilio's callbacks for a caller who joined 10 minutes ago (queue_timeout 300 s) never arrived.
    queue_entered(CALL_SID, queue="support", queue_time=0, timeout=300, at=utcnow() - dt.timedelta(minutes=10))
    assert _call(session).meta["queue"]["entered_at"]
    assert queue_entries() == []


def test_answer_errors(app, session, voice_channel, make_user, twilio_post, standin: TwilioStandIn):
    anna_user = make_user("agent", phone="+48601234567")
    anna_user.available = False  # away: incoming calls queue instead of ringing her
    session.commit()
    anna = _login(app, anna_user)
    nobody = anna.post("/api/v1/calls/queue/answer", json={})
    assert nobody.status_code == 409
    assert nobody.json["error"]["code"] == "queue_empty"

    _enqueue(twilio_post)
    _enqueue(twilio_post, SECOND_SID, SECOND_CALLER)
    no_phone = _login(app, make_user("agent")).post("/api/v1/calls/queue/answer", json={})
    assert no_phone.status_code == 422
    assert no_phone.json["error"]["code"] == "no_agent_phone"

    unknown = anna.post("/api/v1/calls/queue/answer", json={"call_id": 999_999})
    assert unknown.status_code == 404
    assert unknown.json["error"]["code"] == "not_found"
    not_next = anna.post("/api/v1/calls/queue/answer", json={"call_id": _call(session, SECOND_SID).id})
    assert not_next.status_code == 409
    assert not_next.json["error"]["code"] == "not_next"
    assert standin.api_requests("Calls") == []

    standin.fail_next(400, 21215, "Geo Permission configuration is not permitting call")
    refused = anna.post("/api/v1/calls/queue/answer", json={})
    assert refused.status_code == 502
    assert refused.json["error"]["code"] == "twilio_error"
    assert "21215" in refused.json["error"]["message"]
    standin.fail_next(503, 20500, "Internal Server Error")
    down = anna.post("/api/v1/calls/queue/answer", json={})
    assert down.status_code == 502
    assert "unavailable" in down.json["error"]["message"] or "20500" in down.json["error"]["message"]
    # A refused call leaves the caller free to answer.
    assert [item["answering"] for item in anna.get("/api/v1/calls/queue").json["items"]] == [None, None]

    twilio_post("/webhooks/twilio/voice/status", _params(CallStatus="completed", CallDuration="30"))
    gone = anna.post("/api/v1/calls/queue/answer", json={"call_id": _call(session).id})
    assert gone.status_code == 409
    assert gone.json["error"]["code"] == "not_waiting"


def test_the_queue_needs_a_logged_in_agent(app, session, voice_channel, make_user, twilio_post, standin):
    _enqueue(twilio_post)
    client = app.test_client()
    assert client.get("/api/v1/calls/queue").status_code == 401
    response = client.post("/api/v1/calls/queue/answer", json={})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    # Agent or higher: a supervisor sees and answers the queue too.
    supervisor = _login(app, make_user("supervisor", phone="+48601234569"))
    assert supervisor.get("/api/v1/calls/queue").json["count"] == 1
    assert supervisor.post("/api/v1/calls/queue/answer", json={}).status_code == 202
    (request,) = standin.api_requests("Calls")
    assert request.form["To"] == ["+48601234569"]


def test_queue_webhooks_are_signed(app, session, voice_channel, make_user, twilio_post):
    _enqueue(twilio_post)
    agent = make_user("agent")
    call = _call(session)
    for path in ("/voice/queue-bridge", "/voice/queue-answer-status", "/voice/queue-answer"):
        response = twilio_post(
            f"/webhooks/twilio{path}",
            _params(DequeingCallSid="CA" + "e" * 32),
            query=f"agent={agent.id}&call={call.id}&claim=x",
            signature="",
        )
        assert response.status_code == 403, path
    assert _call(session).status == "ringing"
    assert _call(session).agent_id is None


def test_queue_answer_twiml_in_polish():
    from connectors.twilio import twiml

    settings = twiml.VoiceSettings.from_settings({"language": "pl", "queue": "wsparcie", "ring_timeout": 15})
    urls = twiml.WebhookUrls(PUBLIC_URL)
    root = ET.fromstring(twiml.answer_queue(settings, urls, "wsparcie", agent_id=3, call_id=7, claim="t0k"))
    say, dial = list(root)
    assert (say.tag, say.get("language")) == ("Say", "pl-PL")
    assert (dial.tag, dial.get("timeout")) == ("Dial", "15")
    queue = dial.find("Queue")
    assert queue.text == "wsparcie"
    assert queue.get("url") == f"{PUBLIC_URL}/webhooks/twilio/voice/queue-bridge?agent=3&call=7&claim=t0k"
    caller = ET.fromstring(twiml.queue_caller_connected(settings))
    assert [(child.tag, child.get("language")) for child in caller] == [("Say", "pl-PL")]
    nobody = ET.fromstring(twiml.after_queue_answer(settings, "failed"))
    assert [child.tag for child in nobody] == ["Say", "Hangup"]
    assert nobody[0].text == "Nikt już nie czeka. Do widzenia."
    assert [child.tag for child in ET.fromstring(twiml.after_queue_answer(settings, "completed"))] == ["Hangup"]
