"""The contact form: JSON or form-encoded posts become conversations under the sender's email identity."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

SUBMISSION = {
    "name": "Anna Nowak",
    "email": "Anna@Example.com",
    "subject": "Broken zipper",
    "message": "The zipper of my jacket broke after a week.",
}


@pytest.fixture
def form_channel(app: Any) -> Any:
    from app.services.channels import create_channel

    channel, _ = create_channel("form", "Contact page")
    return channel


def _count(session: Any, model: Any) -> int:
    session.remove()
    return int(session.scalar(select(func.count(model.id))))


def test_json_submission_creates_a_conversation_under_the_email_identity(
    app: Any, form_channel: Any, session: Any
) -> None:
    from app.models import Conversation, CustomerIdentity, Message

    response = app.test_client().post(f"/api/v1/forms/{form_channel.id}", json=SUBMISSION)
    assert response.status_code == 201, response.json
    assert response.json == {"ok": True}  # nothing about the customer goes back to whoever posted
    session.remove()
    message = session.scalar(select(Message))
    assert message.channel == "form"
    assert message.subject == "Broken zipper"
    assert message.text == SUBMISSION["message"]
    identity = session.get(CustomerIdentity, message.identity_id)
    assert identity.kind == "email"
    assert identity.value == "anna@example.com"
    assert identity.verified is False  # anybody can type any address into a form
    conversation = session.get(Conversation, message.conversation_id)
    assert conversation.origin_channel == "form"
    assert conversation.customer.name == "Anna Nowak"


def test_form_encoded_submission_gets_a_thank_you_page_or_the_configured_redirect(
    app: Any, form_channel: Any, session: Any
) -> None:
    from app.models import Message

    client = app.test_client()
    page = client.post(f"/api/v1/forms/{form_channel.id}", data={**SUBMISSION, "name": "<b>Anna</b>"})
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert b"Thank you" in page.data
    assert b"<b>" not in page.data
    polish = client.post(
        f"/api/v1/forms/{form_channel.id}",
        data={**SUBMISSION, "message": "Drugie pytanie"},
        headers={"Accept-Language": "pl-PL,pl;q=0.9"},
    )
    assert "Dziękujemy" in polish.get_data(as_text=True)
    channel = session.merge(form_channel)
    channel.settings = {"redirect_url": "https://shop.example/thanks"}
    session.commit()
    redirect = client.post(f"/api/v1/forms/{form_channel.id}", data={**SUBMISSION, "message": "third"})
    assert redirect.status_code == 303
    assert redirect.headers["Location"] == "https://shop.example/thanks"
    assert _count(session, Message) == 3


def test_known_customer_continues_their_conversation(app: Any, form_channel: Any, push: Any, session: Any) -> None:
    from app.models import Message

    earlier = push("email", "anna@example.com", "Where is my jacket?")
    app.test_client().post(f"/api/v1/forms/{form_channel.id}", json=SUBMISSION)
    session.remove()
    message = session.scalar(select(Message).where(Message.channel == "form"))
    assert message.customer_id == earlier.json["customer"]["id"]
    assert message.conversation_id == earlier.json["conversation"]["id"]


def test_double_submit_stores_one_message(app: Any, form_channel: Any, session: Any) -> None:
    from app.models import Message

    client = app.test_client()
    client.post(f"/api/v1/forms/{form_channel.id}", json=SUBMISSION)
    client.post(f"/api/v1/forms/{form_channel.id}", json=SUBMISSION)
    assert _count(session, Message) == 1


def test_honeypot_gets_the_same_answer_and_stores_nothing(app: Any, form_channel: Any, session: Any) -> None:
    from app.models import Customer, Message

    client = app.test_client()
    bot = client.post(f"/api/v1/forms/{form_channel.id}", json={**SUBMISSION, "website": "http://spam.example"})
    assert bot.status_code == 201
    assert bot.json == {"ok": True}
    page = client.post(f"/api/v1/forms/{form_channel.id}", data={**SUBMISSION, "website": "x"})
    assert page.status_code == 200
    assert _count(session, Message) == 0
    assert _count(session, Customer) == 0


def test_bad_fields_are_named(app: Any, form_channel: Any) -> None:
    response = app.test_client().post(
        f"/api/v1/forms/{form_channel.id}", json={"email": "not-an-address", "message": " "}
    )
    assert response.status_code == 422
    assert set(response.json["error"]["fields"]) == {"email", "message"}
    assert (
        app.test_client().post(f"/api/v1/forms/{form_channel.id}", data="x", content_type="text/plain").status_code
        == 400
    )


def test_unknown_form_is_not_found(app: Any, form_channel: Any) -> None:
    assert app.test_client().post("/api/v1/forms/999", json=SUBMISSION).status_code == 404


def test_allowed_origins_are_enforced_and_get_cors(app: Any, form_channel: Any, session: Any) -> None:
    channel = session.merge(form_channel)
    channel.settings = {"allowed_origins": ["https://shop.example"]}
    session.commit()
    client = app.test_client()
    refused = client.post(f"/api/v1/forms/{channel.id}", json=SUBMISSION, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    preflight = client.options(f"/api/v1/forms/{channel.id}", headers={"Origin": "https://shop.example"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    ok = client.post(f"/api/v1/forms/{channel.id}", json=SUBMISSION, headers={"Origin": "https://shop.example"})
    assert ok.status_code == 201
    assert ok.headers["Access-Control-Allow-Origin"] == "https://shop.example"


def test_reply_to_a_form_conversation_goes_by_email(
    app: Any, form_channel: Any, agent_client: Any, session: Any
) -> None:
    from app.models import Conversation, User
    from app.services.channels import create_channel
    from app.services.reply import reply

    create_channel("email", "Support", address="support@shop.example")
    app.test_client().post(f"/api/v1/forms/{form_channel.id}", json=SUBMISSION)
    session.remove()
    conversation = session.scalar(select(Conversation))
    answer = reply(conversation.id, session.get(User, agent_client.user["id"]), "We will send a new jacket.")
    assert answer.channel == "email"
    assert answer.delivery_status == "queued"


def test_snippet_is_for_admins_and_posts_to_the_form(admin_client: Any, agent_client: Any, form_channel: Any) -> None:
    url = f"/api/v1/forms/{form_channel.id}/snippet"
    assert agent_client.get(url).status_code == 403
    snippet = admin_client.get(url).json
    assert f'action="http://testserver.local/api/v1/forms/{form_channel.id}"' in snippet["html"]
    assert 'name="website"' in snippet["html"]
    assert snippet["honeypot_field"] == "website"


@pytest.fixture
def limited_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config.update(RATELIMIT_ENABLED=True, FORM_RATE_LIMIT="2 per minute")
    return app_config


def test_submissions_are_rate_limited_per_address(limited_config: Any, app: Any, form_channel: Any) -> None:
    client = app.test_client()
    codes = [
        client.post(f"/api/v1/forms/{form_channel.id}", json={**SUBMISSION, "message": f"try {n}"}).status_code
        for n in range(3)
    ]
    assert codes == [201, 201, 429]
