"""Canned responses: admins manage the snippets, every agent reads them; changes are audited."""

from __future__ import annotations

from sqlalchemy import select

from app.models import AuditLog


def _create(client, **body):
    payload = {"shortcut": "thanks", "title": "Thank you", "body": "Thank you, {{customer.first_name}}!"} | body
    return client.post("/api/v1/canned-responses", json=payload)


def test_admin_creates_and_agent_reads_canned_response(admin_client, agent_client):
    created = _create(admin_client)
    assert created.status_code == 201
    assert created.json["shortcut"] == "thanks"
    listed = agent_client.get("/api/v1/canned-responses")
    assert listed.status_code == 200
    assert [item["title"] for item in listed.json["items"]] == ["Thank you"]
    assert "customer.first_name" in listed.json["placeholders"]
    assert agent_client.get(f"/api/v1/canned-responses/{created.json['id']}").json["body"].startswith("Thank you")


def test_agents_cannot_change_canned_responses(admin_client, agent_client):
    item = _create(admin_client).json
    assert _create(agent_client, shortcut="other").status_code == 403
    assert agent_client.patch(f"/api/v1/canned-responses/{item['id']}", json={"title": "x"}).status_code == 403
    assert agent_client.delete(f"/api/v1/canned-responses/{item['id']}").status_code == 403


def test_anonymous_sees_nothing(anon_client):
    assert anon_client.get("/api/v1/canned-responses").status_code == 401


def test_shortcut_is_unique_and_normalised(admin_client):
    assert _create(admin_client, shortcut="Refund").json["shortcut"] == "refund"
    duplicate = _create(admin_client, shortcut="refund")
    assert duplicate.status_code == 409
    assert duplicate.json["error"]["fields"] == {"shortcut": "already used"}
    bad = _create(admin_client, shortcut="two words")
    assert bad.status_code == 422
    assert "shortcut" in bad.json["error"]["fields"]


def test_unknown_placeholder_is_refused(admin_client):
    response = _create(admin_client, body="Hi {{customer.shoe_size}}")
    assert response.status_code == 422
    assert "customer.shoe_size" in response.json["error"]["fields"]["body"]


def test_admin_edits_and_deletes_with_audit_trail(admin_client, session):
    item = _create(admin_client).json
    changed = admin_client.patch(f"/api/v1/canned-responses/{item['id']}", json={"title": "Thanks a lot"})
    assert changed.status_code == 200
    assert changed.json["title"] == "Thanks a lot"
    assert changed.json["updated_at"] is not None
    # keeping its own shortcut is not a conflict
    assert admin_client.patch(f"/api/v1/canned-responses/{item['id']}", json={"shortcut": "thanks"}).status_code == 200
    assert admin_client.delete(f"/api/v1/canned-responses/{item['id']}").status_code == 200
    assert admin_client.get(f"/api/v1/canned-responses/{item['id']}").status_code == 404
    actions = session.scalars(
        select(AuditLog.action).where(AuditLog.target_type == "canned_response").order_by(AuditLog.id)
    ).all()
    assert actions == ["canned.created", "canned.updated", "canned.updated", "canned.deleted"]


def test_unknown_fields_are_refused(admin_client):
    response = _create(admin_client, colour="red")
    assert response.status_code == 422
