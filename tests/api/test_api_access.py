"""Who may call what: every route needs a login unless it is on the short public list below; roles; CSRF."""

from __future__ import annotations

import re
from typing import Any

import pytest

# The routes anyone may call, and how each one authenticates instead of a login. Keep this list short:
# a new public route must be added here on purpose, with its reason, or test_only_listed_routes_are_public
# fails.
PUBLIC_ROUTES: dict[str, str] = {
    "/healthz": "health check for load balancers; reveals nothing",
    "/api/v1/ping": "liveness and latency probe; touches nothing",
    "/api/v1/openapi.json": "the API description itself",
    "/api/v1/auth/login": "how a session starts; rate-limited",
    "/api/v1/channels/<int:channel_id>/inbound": "api channel; authenticated by the channel's bearer token",
    "/": "console page shell; static, every datum behind it needs a login",
    "/app": "console page shell (client-side routes)",
    "/app/": "console page shell (client-side routes)",
    "/app/<path:_path>": "console page shell (client-side routes)",
    "/console/<path:filename>": "console build assets (static files)",
}
PUBLIC_PREFIXES: dict[str, str] = {
    "/static/": "Flask's static files",
    "/webhooks/": "provider webhooks; each checks the provider's signature (e.g. X-Twilio-Signature)",
    "/widget": "chat widget loader and iframe app; visitors authenticate on the /widget socket namespace",
    "/api/v1/forms/": "website contact forms; checked by origin and rate limits",
    "/api/v1/widget": "chat widget HTTP endpoints; signed visitor tokens",
}

_CONVERTER = re.compile(r"<(?:(?P<conv>[a-z]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")


def _is_listed_public(rule: str) -> bool:
    return rule in PUBLIC_ROUTES or rule.startswith(tuple(PUBLIC_PREFIXES))


def _url(rule: str) -> str:
    """A concrete URL for a rule: 1 for int parts, "x" for the rest."""
    return _CONVERTER.sub(lambda m: "1" if m["conv"] == "int" else "x", rule)


def _routes(app: Any) -> list[tuple[str, str, Any]]:
    found = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.rule, method, view))
    return found


def test_every_view_is_decorated_with_role_required_or_public(app):
    undecorated = [
        f"{rule} ({view.__module__}.{view.__name__})"
        for rule, _method, view in _routes(app)
        if not getattr(view, "required_role", None)
        and not getattr(view, "is_public", False)
        and not rule.startswith("/static/")
    ]
    assert undecorated == [], "decorate these views with role_required(...) or public"


def test_only_listed_routes_are_public(app):
    unlisted = sorted(
        {
            rule
            for rule, _method, view in _routes(app)
            if getattr(view, "is_public", False) and not _is_listed_public(rule)
        }
    )
    assert unlisted == [], "add each new public route to PUBLIC_ROUTES with how it authenticates"


def test_every_route_outside_the_public_list_refuses_anonymous_requests(app, anon_client):
    checked = 0
    for rule, method, _view in _routes(app):
        if _is_listed_public(rule):
            continue
        response = anon_client.client.open(_url(rule), method=method, json={} if method != "GET" else None)
        assert response.status_code == 401, f"{method} {rule} answered {response.status_code} to an anonymous request"
        assert response.is_json, f"{method} {rule}"
        assert response.json["error"]["code"] == "unauthorized", f"{method} {rule}"
        checked += 1
    assert checked > 20  # the core API alone has more routes than this


@pytest.mark.parametrize("role", ["supervisor", "admin"])
def test_agents_get_403_on_every_route_above_their_role(app, agent_client, role):
    above = [(rule, method) for rule, method, view in _routes(app) if getattr(view, "required_role", None) == role]
    if role == "admin":
        assert ("/api/v1/users", "POST") in above
    for rule, method in above:
        response = agent_client.client.open(
            _url(rule), method=method, json={} if method != "GET" else None, headers={"X-CSRF-Token": agent_client.csrf}
        )
        assert response.status_code == 403, f"{method} {rule} answered {response.status_code} to an agent"
        assert response.json["error"]["code"] == "forbidden"


def test_supervisors_get_403_on_admin_endpoints(supervisor_client):
    assert supervisor_client.post("/api/v1/users", json={}).status_code == 403
    assert supervisor_client.patch("/api/v1/teams/1", json={}).status_code == 403
    assert supervisor_client.get("/api/v1/users").status_code == 200


def test_admin_endpoints_answer_admins(admin_client):
    response = admin_client.post("/api/v1/teams", json={"name": "Billing"})
    assert response.status_code == 201


def test_cookie_authenticated_post_without_csrf_header_is_refused(app, make_user, conversation, session):
    from sqlalchemy import func, select

    from app.models import Message
    from tests.conftest import PASSWORD

    user = make_user("agent")
    client = app.test_client()
    assert client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}).status_code == 200
    url = f"/api/v1/conversations/{conversation['conversation']['id']}/messages"
    before = session.scalar(select(func.count(Message.id)))

    missing = client.post(url, json={"body": "hello", "private": True})
    wrong = client.post(url, json={"body": "hello", "private": True}, headers={"X-CSRF-Token": "guess"})

    assert missing.status_code == 403
    assert missing.json["error"]["code"] == "csrf_failed"
    assert wrong.status_code == 403
    assert wrong.json["error"]["code"] == "csrf_failed"
    session.rollback()
    assert session.scalar(select(func.count(Message.id))) == before


def test_cookie_authenticated_patch_without_csrf_header_changes_nothing(app, make_user, session):
    from app.models import User
    from tests.conftest import PASSWORD

    user = make_user("agent", name="Before")
    client = app.test_client()
    login = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})

    refused = client.patch("/api/v1/me", json={"name": "After"})
    accepted = client.patch("/api/v1/me", json={"name": "After"}, headers={"X-CSRF-Token": login.json["csrf_token"]})

    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "csrf_failed"
    assert accepted.status_code == 200
    assert accepted.json["name"] == "After"
    session.expire_all()
    assert session.get(User, user.id).name == "After"


def test_deactivated_user_session_stops_working(admin_client, make_user, app):
    from tests.conftest import ApiClient

    user = make_user("agent")
    agent = ApiClient(app.test_client())
    agent.login(user.email)
    assert agent.get("/api/v1/conversations").status_code == 200

    response = admin_client.patch(f"/api/v1/users/{user.id}", json={"active": False})
    assert response.status_code == 200, response.json

    assert agent.get("/api/v1/conversations").status_code == 401
    assert ApiClient(app.test_client()).login(user.email).status_code == 401
