from __future__ import annotations


def test_first_message_creates_customer_and_conversation(push, agent_client):
    response = push("email", "Anna.Nowak@Example.com", "My parcel is late", name="Anna Nowak", subject="Parcel")
    assert response.status_code == 201, response.json
    body = response.json
    assert body["created"] is True
    assert body["conversation"]["status"] == "open"
    assert body["conversation"]["origin_channel"] == "api"
    assert body["customer"]["name"] == "Anna Nowak"
    listed = agent_client.get("/api/v1/channels")
    assert listed.status_code == 200


def test_same_provider_id_twice_stores_one_message(push):
    first = push(text="hi", provider_id="shop-1")
    second = push(text="hi", provider_id="shop-1")
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json["created"] is False
    assert second.json["message"]["id"] == first.json["message"]["id"]


def test_second_message_from_other_identity_kind_of_same_customer_joins_conversation(push, app):
    from app.services.customers import add_identity

    first = push("email", "jan@example.com", "Where is my order?")
    add_identity(first.json["customer"]["id"], "phone", "601 234 567")
    second = push("phone", "+48601234567", "Any news?")
    assert second.json["customer"]["id"] == first.json["customer"]["id"]
    assert second.json["conversation"]["id"] == first.json["conversation"]["id"]


def test_bad_token_is_refused_and_stores_nothing(app, api_channel, session):
    from sqlalchemy import func, select

    from app.models import Message

    channel, _ = api_channel
    response = app.test_client().post(
        f"/api/v1/channels/{channel.id}/inbound",
        json={"identity": {"kind": "email", "value": "a@b.co"}, "text": "x"},
        headers={"Authorization": "Bearer nope"},
    )
    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"
    assert session.scalar(select(func.count(Message.id))) == 0


def test_invalid_phone_gives_field_error(push):
    response = push("phone", "12", "hello")
    assert response.status_code == 422
    assert "identity.value" in response.json["error"]["fields"]


def test_malformed_json_is_a_400(app, api_channel):
    channel, token = api_channel
    response = app.test_client().post(
        f"/api/v1/channels/{channel.id}/inbound",
        data="{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_request"


def test_channel_secrets_are_never_listed_and_survive_a_settings_update(admin_client, agent_client):
    created = admin_client.post(
        "/api/v1/channels",
        json={"kind": "chat", "name": "Shop chat", "settings": {"identity_secret": "s3cret", "color": "#112233"}},
    )
    assert created.status_code == 201, created.json
    channel_id = created.json["id"]
    listed = agent_client.get("/api/v1/channels").json["items"]
    assert "identity_secret" not in listed[0]["settings"]
    assert listed[0]["secrets_set"] == ["identity_secret"]
    updated = admin_client.patch(f"/api/v1/channels/{channel_id}", json={"settings": {"color": "#445566"}})
    assert updated.status_code == 200
    from app.extensions import db
    from app.models import Channel

    db.session.expire_all()
    assert db.session.get(Channel, channel_id).settings == {"identity_secret": "s3cret", "color": "#445566"}
