"""Users, teams and one's own profile."""

from __future__ import annotations

from typing import Any

import pytest

SECRET_KEYS = {"password", "password_hash", "hash", "token", "preferences"}


def test_agents_can_read_users_without_secrets(agent_client, make_user):
    make_user("supervisor", name="Sam Supervisor")

    response = agent_client.get("/api/v1/users")

    assert response.status_code == 200
    users = response.json["items"]
    assert {u["name"] for u in users} >= {"Sam Supervisor"}
    for user in users:
        assert not SECRET_KEYS & set(user)
        assert set(user) == {
            "id",
            "email",
            "name",
            "role",
            "active",
            "available",
            "locale",
            "phone",
            "client_identity",
            "team_ids",
        }
    one = agent_client.get(f"/api/v1/users/{users[0]['id']}")
    assert one.status_code == 200
    assert agent_client.get("/api/v1/users/999").status_code == 404


def test_admin_creates_a_user_with_role_teams_and_phone(admin_client, app):
    from tests.conftest import ApiClient

    team = admin_client.post("/api/v1/teams", json={"name": "Voice"}).json["id"]

    response = admin_client.post(
        "/api/v1/users",
        json={
            "email": "Nina@Example.com",
            "name": "Nina",
            "password": "long enough password",
            "role": "supervisor",
            "phone": "601 234 567",
            "client_identity": "nina",
            "team_ids": [team],
        },
    )

    assert response.status_code == 201, response.json
    user = response.json
    assert (user["email"], user["role"], user["phone"], user["client_identity"]) == (
        "nina@example.com",
        "supervisor",
        "+48601234567",
        "nina",
    )
    assert user["team_ids"] == [team]
    assert admin_client.get(f"/api/v1/teams/{team}").json["member_ids"] == [user["id"]]
    nina = ApiClient(app.test_client())
    assert nina.login("nina@example.com", "long enough password").status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"email": "not-an-email", "name": "X", "password": "long enough"}, 422, "email"),
        ({"email": "x@example.com", "name": "X", "password": "short"}, 422, "password"),
        ({"email": "x@example.com", "name": "X", "password": "long enough", "role": "owner"}, 422, "role"),
        ({"email": "x@example.com", "name": "X", "password": "long enough", "phone": "12"}, 422, "phone"),
        ({"email": "x@example.com", "name": "X", "password": "long enough", "team_ids": [999]}, 404, "team_ids"),
        ({"email": "x@example.com", "password": "long enough"}, 422, "name"),
    ],
)
def test_bad_new_user_is_refused_with_field_details_and_nothing_is_created(admin_client, session, body, status, field):
    from sqlalchemy import func, select

    from app.models import User

    before = session.scalar(select(func.count(User.id)))

    response = admin_client.post("/api/v1/users", json=body)

    assert response.status_code == status, response.json
    assert field in response.json["error"]["fields"]
    session.rollback()
    assert session.scalar(select(func.count(User.id))) == before


def test_duplicate_email_is_a_409(admin_client, make_user):
    existing = make_user("agent")
    response = admin_client.post(
        "/api/v1/users", json={"email": existing.email.upper(), "name": "Again", "password": "long enough"}
    )
    assert response.status_code == 409
    assert "email" in response.json["error"]["fields"]


def test_admin_updates_role_active_name_phone_teams_and_resets_password(admin_client, make_user, app, session):
    from app.models import AuditLog
    from tests.conftest import ApiClient

    user = make_user("agent")
    team = admin_client.post("/api/v1/teams", json={"name": "Sales"}).json["id"]

    response = admin_client.patch(
        f"/api/v1/users/{user.id}",
        json={
            "role": "supervisor",
            "name": "Renamed",
            "phone": "+48 22 123 45 67",
            "client_identity": "renamed",
            "team_ids": [team],
            "password": "a brand new password",
        },
    )

    assert response.status_code == 200, response.json
    body = response.json
    assert (body["role"], body["name"], body["phone"], body["team_ids"]) == (
        "supervisor",
        "Renamed",
        "+48221234567",
        [team],
    )
    client = ApiClient(app.test_client())
    assert client.login(user.email).status_code == 401
    assert client.login(user.email, "a brand new password").status_code == 200
    audit = session.query(AuditLog).filter_by(action="user.updated", target_id=user.id).one()
    assert "password" in audit.data["fields"]
    assert "a brand new password" not in str(audit.data)
    cleared = admin_client.patch(f"/api/v1/users/{user.id}", json={"phone": None, "team_ids": []}).json
    assert (cleared["phone"], cleared["team_ids"]) == (None, [])


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(admin_client, make_user):
    me = admin_client.user["id"]

    demote = admin_client.patch(f"/api/v1/users/{me}", json={"role": "agent"})
    deactivate = admin_client.patch(f"/api/v1/users/{me}", json={"active": False})

    assert demote.status_code == 409
    assert demote.json["error"]["code"] == "last_admin"
    assert deactivate.status_code == 409
    other = make_user("admin")
    assert admin_client.patch(f"/api/v1/users/{other.id}", json={"active": False}).status_code == 200
    assert admin_client.patch(f"/api/v1/users/{me}", json={"role": "agent"}).status_code == 409
    admin_client.patch(f"/api/v1/users/{other.id}", json={"active": True})
    assert admin_client.patch(f"/api/v1/users/{me}", json={"role": "supervisor"}).status_code == 200


def test_unknown_user_or_team_is_404(admin_client):
    assert admin_client.patch("/api/v1/users/999", json={"name": "x"}).status_code == 404
    assert admin_client.patch("/api/v1/teams/999", json={"name": "x"}).status_code == 404
    assert admin_client.get("/api/v1/teams/999").status_code == 404


def test_teams_are_created_renamed_and_their_members_replaced(admin_client, agent_client, make_user):
    a, b = make_user("agent"), make_user("agent")

    created = admin_client.post("/api/v1/teams", json={"name": "Support", "member_ids": [a.id]})
    duplicate = admin_client.post("/api/v1/teams", json={"name": "support"})
    unknown_member = admin_client.post("/api/v1/teams", json={"name": "Other", "member_ids": [999]})

    assert created.status_code == 201
    assert created.json == {"id": created.json["id"], "name": "Support", "member_ids": [a.id]}
    assert duplicate.status_code == 409
    assert unknown_member.status_code == 404
    assert "member_ids" in unknown_member.json["error"]["fields"]
    team_id = created.json["id"]
    changed = admin_client.patch(f"/api/v1/teams/{team_id}", json={"name": "Customer care", "member_ids": [b.id]})
    assert changed.json == {"id": team_id, "name": "Customer care", "member_ids": [b.id]}
    listed = agent_client.get("/api/v1/teams").json["items"]
    assert [t["name"] for t in listed] == ["Customer care"]
    assert agent_client.get(f"/api/v1/users/{b.id}").json["team_ids"] == [team_id]


def test_me_changes_own_name_locale_and_availability_and_announces_presence(agent_client, events):
    from app.events import PRESENCE_UPDATED

    response = agent_client.patch("/api/v1/me", json={"name": "Ana", "locale": "pl", "available": False})

    assert response.status_code == 200, response.json
    assert (response.json["name"], response.json["locale"], response.json["available"]) == ("Ana", "pl", False)
    presence = [e for e in events if e.name == PRESENCE_UPDATED]
    assert [e.payload for e in presence] == [{"user_id": agent_client.user["id"], "available": False}]
    assert agent_client.get("/api/v1/auth/me").json["user"]["name"] == "Ana"


@pytest.mark.parametrize("body", [{"role": "admin"}, {"locale": "english!"}, {"available": "maybe"}, {"name": ""}])
def test_me_cannot_change_other_fields_or_take_bad_values(agent_client, body):
    response = agent_client.patch("/api/v1/me", json=body)
    assert response.status_code == 422
    assert next(iter(body)) in response.json["error"]["fields"]


def test_deactivating_a_user_marks_them_unavailable(admin_client, make_user, events):
    from app.events import PRESENCE_UPDATED

    user = make_user("agent")

    body = admin_client.patch(f"/api/v1/users/{user.id}", json={"active": False}).json

    assert (body["active"], body["available"]) == (False, False)
    assert any(e.name == PRESENCE_UPDATED and e.payload["user_id"] == user.id for e in events)


def _list(client: Any, url: str) -> list[dict[str, Any]]:
    return client.get(url).json["items"]


def test_user_list_can_show_only_active_users(admin_client, make_user, agent_client):
    gone = make_user("agent")
    admin_client.patch(f"/api/v1/users/{gone.id}", json={"active": False})

    active = {u["id"] for u in _list(agent_client, "/api/v1/users?active=true")}
    inactive = {u["id"] for u in _list(agent_client, "/api/v1/users?active=false")}

    assert gone.id in inactive
    assert gone.id not in active
    assert agent_client.user["id"] in active
