"""Visitor sessions over HTTP: allowed origins, HMAC-verified identity, pre-chat claims, one's own history only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.chat.payload import user_hash
from tests.widget.conftest import OTHER_SHOP, SECRET, SHOP


def _visitor_of(token: str) -> Any:
    from app.services.widget import read_token

    return read_token(token)


def test_session_is_issued_for_an_allowed_page_and_restored_from_its_token(widget: Any) -> None:
    visitor = widget()
    first = visitor.start()
    assert first.status_code == 200, first.json
    body = first.json
    assert body["conversation_id"] is None
    assert body["config"]["prechat_fields"][1] == {"name": "email", "type": "email", "required": True}
    assert "identity_secret" not in str(body)  # the secret never reaches a browser
    again = visitor.start()
    assert _visitor_of(again.json["token"]).visitor_id == _visitor_of(body["token"]).visitor_id


def test_session_is_restored_from_the_partitioned_cookie_when_storage_is_blocked(widget: Any) -> None:
    visitor = widget()
    first = visitor.start()
    cookie = first.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "Secure", "SameSite=None", "Partitioned", "Path=/api/v1/widget/"):
        assert attribute in cookie
    # A reload in a browser that denies the iframe localStorage: no token in the body, only the cookie.
    again = visitor.http.post(
        "/api/v1/widget/session",
        json={"channel_id": visitor.channel_id, "host": SHOP},
        headers={"Origin": "http://testserver.local"},
        base_url="https://localhost",
    )
    assert _visitor_of(again.json["token"]).visitor_id == _visitor_of(first.json["token"]).visitor_id


@pytest.mark.parametrize(
    ("headers", "host"),
    [
        ({"Origin": "http://testserver.local"}, OTHER_SHOP),
        ({"Origin": OTHER_SHOP}, SHOP),  # a foreign page cannot claim to be the shop
        ({"Origin": "http://testserver.local"}, "*"),
        ({}, None),
    ],
)
def test_session_for_a_page_not_on_the_allow_list_is_refused(
    app: Any, chat_channel: Any, headers: dict[str, str], host: str | None
) -> None:
    response = app.test_client().post(
        "/api/v1/widget/session", json={"channel_id": chat_channel.id, "host": host}, headers=headers
    )
    assert response.status_code == 403
    assert response.json["error"]["code"] == "origin_not_allowed"


def test_unknown_or_disabled_channel_is_not_found(app: Any, chat_channel: Any, session: Any) -> None:
    client = app.test_client()
    assert client.post("/api/v1/widget/session", json={"channel_id": 999, "host": SHOP}).status_code == 404
    channel = session.merge(chat_channel)
    channel.enabled = False
    session.commit()
    assert client.post("/api/v1/widget/session", json={"channel_id": channel.id, "host": SHOP}).status_code == 404


def test_iframe_page_may_only_be_framed_by_the_allowed_origins(app: Any, chat_channel: Any, tmp_path: Path) -> None:
    dist = tmp_path / "widget"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><div id=sb-root></div>")
    (dist / "widget.js").write_text("(()=>{})()")
    app.config["WIDGET_DIST_DIR"] = str(dist)
    client = app.test_client()
    page = client.get(f"/widget/?channel={chat_channel.id}")
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors http://shop.example" in policy
    assert "*" not in policy
    assert client.get("/widget/?channel=999").status_code == 404
    loader = client.get("/widget.js")
    assert loader.status_code == 200
    assert loader.mimetype == "text/javascript"


def test_forged_hmac_is_refused_and_links_nothing(widget: Any, session: Any) -> None:
    from app.models import CustomerIdentity

    visitor = widget()
    response = visitor.start(user_id="42", user_hash=user_hash("guessed-secret", "42"))
    assert response.status_code == 403
    assert response.json["error"]["code"] == "verification_failed"
    assert visitor.start(user_id="42").status_code == 403  # no hash at all
    session.remove()
    assert session.scalar(select(func.count(CustomerIdentity.id))) == 0


def test_verified_visitor_joins_the_existing_customers_timeline(widget: Any, push: Any, session: Any) -> None:
    from app.models import Message
    from app.services.customers import add_identity

    earlier = push("email", "anna@example.com", "My parcel is late", name="Anna Nowak")
    customer_id = earlier.json["customer"]["id"]
    add_identity(customer_id, "external", "shop-user-42", verified=True)

    visitor = widget()
    response = visitor.start(user_id="shop-user-42", user_hash=user_hash(SECRET, "shop-user-42"))
    assert response.status_code == 200, response.json
    assert response.json["visitor"]["verified"] is True
    visitor.connect()
    ack = visitor.send("Any news about my parcel?")
    assert ack["ok"], ack
    session.remove()
    message = session.get(Message, ack["message"]["id"])
    assert message.customer_id == customer_id
    assert message.conversation_id == earlier.json["conversation"]["id"]
    # The widget shows the chat, not the email that started the conversation.
    assert [item["text"] for item in visitor.history().json["items"]] == ["Any news about my parcel?"]


def test_verified_user_sees_the_same_chat_on_another_device(widget: Any) -> None:
    proof = {"user_id": "shop-user-7", "user_hash": user_hash(SECRET, "shop-user-7")}
    laptop, phone = widget(), widget()
    laptop.start(**proof)
    laptop.connect()
    laptop.send("Started on my laptop")
    phone.start(**proof)
    assert _visitor_of(phone.token).visitor_id != _visitor_of(laptop.token).visitor_id
    assert [item["text"] for item in phone.history().json["items"]] == ["Started on my laptop"]


def test_login_and_logout_never_carry_a_chat_between_people(widget: Any, session: Any) -> None:
    from app.models import Customer

    browser = widget()
    browser.start()
    browser.connect()
    browser.send("Anonymous question before logging in")
    # The shop user logs in on this browser: a fresh visitor, nothing merged.
    browser.start(user_id="shop-user-9", user_hash=user_hash(SECRET, "shop-user-9"))
    assert browser.history().json["items"] == []
    browser.connect()
    browser.send("Logged-in question")
    # They log out: the next person on this computer does not see the logged-in chat.
    browser.start()
    assert browser.history().json["items"] == []
    session.remove()
    assert session.scalar(select(func.count(Customer.id)).where(Customer.merged_into_id.is_not(None))) == 0
    assert session.scalar(select(func.count(Customer.id))) == 2


def test_prechat_email_is_recorded_as_an_unverified_identity(widget: Any, session: Any) -> None:
    from app.models import CustomerIdentity

    visitor = widget()
    response = visitor.start(name="Anna", email="Anna@Example.com", fields={"order": "PL-1234", "unknown": "dropped"})
    assert response.status_code == 200, response.json
    assert response.json["visitor"] == {"name": "Anna", "has_email": True, "verified": False, "prechat_done": True}
    session.remove()
    identity = session.scalar(select(CustomerIdentity).where(CustomerIdentity.kind == "email"))
    assert identity.value == "anna@example.com"
    assert identity.verified is False
    assert identity.source == "prechat"
    assert identity.customer.attributes["prechat"] == {
        "order": "PL-1234",
        "email": "anna@example.com",
        "email_verified": False,
    }


def test_claiming_someone_elses_email_links_nothing_and_shows_nothing(
    widget: Any, push: Any, agent_client: Any, session: Any
) -> None:
    from app.models import Customer, CustomerIdentity, Message

    bob = push("email", "bob@example.com", "My card number ends with 1234", name="Bob")
    bob_customer = bob.json["customer"]["id"]

    impostor = widget()
    response = impostor.start(name="Not Bob", email="bob@example.com")
    assert response.status_code == 200
    assert impostor.history().json["items"] == []
    impostor.connect()
    ack = impostor.send("Show me my orders")
    session.remove()
    message = session.get(Message, ack["message"]["id"])
    assert message.customer_id != bob_customer
    assert message.conversation_id != bob.json["conversation"]["id"]
    owner = session.scalar(select(CustomerIdentity).where(CustomerIdentity.value == "bob@example.com"))
    assert owner.customer_id == bob_customer
    visitor_customer = session.get(Customer, message.customer_id)
    assert visitor_customer.merged_into_id is None
    assert visitor_customer.attributes["prechat"]["email"] == "bob@example.com"  # the agent sees the claim


def test_mail_from_a_claimed_address_never_reaches_the_claimants_widget(
    widget: Any, push: Any, agent_client: Any, email_channel: Any
) -> None:
    from app.services.reply import reply
    from tests.widget.conftest import agent_user

    impostor = widget()
    impostor.start(email="victim@example.com")  # nobody owned it yet: stored unverified on the impostor
    impostor.connect()
    conversation_id = impostor.send("hello")["conversation_id"]
    impostor.received()
    victim = push("email", "victim@example.com", "My new password is hunter2")
    assert victim.json["conversation"]["id"] == conversation_id  # same customer, as far as routing knows
    reply(conversation_id, agent_user(agent_client), "Noted, victim", channel="email")
    assert impostor.received("message.created") == []
    assert [item["text"] for item in impostor.history().json["items"]] == ["hello"]


def test_history_needs_the_visitor_token(app: Any) -> None:
    client = app.test_client()
    assert client.get("/api/v1/widget/messages").status_code == 401
    assert client.get("/api/v1/widget/messages", headers={"Authorization": "Bearer forged"}).status_code == 401


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _upload(visitor: Any, data: bytes, name: str, content_type: str) -> Any:
    import io

    return visitor.http.post(
        "/api/v1/widget/attachments",
        data={"file": (io.BytesIO(data), name, content_type)},
        headers={"Authorization": f"Bearer {visitor.token}"},
        content_type="multipart/form-data",
    )


def test_attachment_is_checked_stored_and_shown_only_to_its_visitor(widget: Any) -> None:
    anna, bob = widget(), widget()
    anna.start()
    bob.start()
    uploaded = _upload(anna, PNG, "../../photo.png", "image/png")
    assert uploaded.status_code == 201, uploaded.json
    assert uploaded.json["filename"] == "photo.png"
    anna.connect()
    ack = anna.send("", attachments=[uploaded.json["token"]])
    assert ack["ok"], ack
    attachment = ack["message"]["attachments"][0]
    assert attachment["content_type"] == "image/png"
    headers = {"Authorization": f"Bearer {anna.token}"}
    file = anna.http.get(attachment["url"], headers=headers)
    assert file.status_code == 200
    assert file.data == PNG
    assert file.headers["X-Content-Type-Options"] == "nosniff"
    assert bob.http.get(attachment["url"], headers={"Authorization": f"Bearer {bob.token}"}).status_code == 404
    # Bob cannot send Anna's upload either.
    bob.connect()
    stolen = bob.send("mine now", client_id="steal-upload", attachments=[uploaded.json["token"]])
    assert stolen["ok"] is False
    assert stolen["error"]["field"] == "attachments"


def test_attachment_type_and_size_limits(widget: Any) -> None:
    visitor = widget()
    visitor.start()
    fake = _upload(visitor, b"MZ\x90\x00 not really a png", "invoice.png", "image/png")
    assert fake.status_code == 422
    assert fake.json["error"]["code"] == "unsupported_type"
    script = _upload(visitor, b"<script>alert(1)</script>", "x.html", "text/html")
    assert script.status_code == 422
    big = _upload(visitor, PNG + b"\x00" * 2000, "big.png", "image/png")  # the channel allows 1024 bytes
    assert big.status_code == 422
    assert big.json["error"]["code"] == "too_large"


def test_admin_gets_the_snippet_and_can_rotate_the_secret(
    admin_client: Any, agent_client: Any, chat_channel: Any
) -> None:
    url = f"/api/v1/widget/channels/{chat_channel.id}/snippet"
    assert agent_client.get(url).status_code == 403
    snippet = admin_client.get(url).json
    assert snippet["html"] == (
        f'<script src="http://testserver.local/widget.js" data-channel="{chat_channel.id}" async></script>'
    )
    assert snippet["identity_verification"] is True
    rotated = admin_client.post(f"/api/v1/widget/channels/{chat_channel.id}/secret")
    assert rotated.status_code == 201
    secret = rotated.json["identity_secret"]
    assert rotated.json["example"]["user_hash"] == user_hash(secret, "42")
