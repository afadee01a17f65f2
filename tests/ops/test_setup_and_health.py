"""`flask setup` on a fresh database, the health check, the no-op ping, and oversized requests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import free_port, make_test_config


@pytest.fixture
def fresh_app(empty_database_url: str, tmp_path: Path) -> Iterator[Any]:
    """An app on an empty database (no tables yet), without the test app context pushed."""
    from app import create_app
    from app.extensions import db

    def build(**overrides: Any) -> Any:
        return create_app(make_test_config(empty_database_url, tmp_path, **overrides))

    yield build
    db.session.remove()
    if db.engine is not None:
        db.engine.dispose()


def _admins(app: Any) -> list[Any]:
    from app.extensions import db
    from app.models import User

    with app.app_context():
        users = db.session.scalars(select(User)).all()
        db.session.remove()
    return list(users)


def test_setup_creates_the_admin_from_the_environment(fresh_app):
    app = fresh_app(ADMIN_EMAIL="Boss@Example.com", ADMIN_PASSWORD="a long enough password")

    result = app.test_cli_runner().invoke(args=["setup"])

    assert result.exit_code == 0, result.output
    assert "Created the first admin: boss@example.com" in result.output
    assert "password" not in result.output.lower().replace("created the first admin", "")
    admins = _admins(app)
    assert [(user.email, user.role) for user in admins] == [("boss@example.com", "admin")]
    assert admins[0].check_password("a long enough password")


def test_setup_without_a_password_prints_a_generated_one_once(fresh_app):
    app = fresh_app(ADMIN_EMAIL="admin@example.com", ADMIN_PASSWORD=None)
    runner = app.test_cli_runner()

    first = runner.invoke(args=["setup"])
    assert first.exit_code == 0, first.output
    match = re.search(r"Generated password \(shown once.*\): (\S+)", first.output)
    assert match, first.output
    assert _admins(app)[0].check_password(match.group(1))

    second = runner.invoke(args=["setup"])  # running it again migrates (nothing to do) and creates nobody
    assert second.exit_code == 0, second.output
    assert "Generated password" not in second.output
    assert "Created the first admin" not in second.output
    assert len(_admins(app)) == 1


def test_healthz_reports_ok_when_the_database_answers(app):
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("sqlite:////nonexistent-dir/nowhere/switchboard.db", id="sqlite-missing-directory"),
        pytest.param(f"postgresql://root@127.0.0.1:{free_port()}/switchboard", id="postgresql-nothing-listening"),
    ],
)
def test_healthz_is_503_when_the_database_is_unreachable(url, tmp_path):
    from app import create_app
    from app.extensions import db

    app = create_app(make_test_config(url, tmp_path))
    try:
        response = app.test_client().get("/healthz")
    finally:
        db.session.remove()
        db.engine.dispose()
    assert response.status_code == 503
    assert response.json["status"] == "error"
    assert response.json["database"] == "unreachable"


def test_ping_answers_without_login_or_database(tmp_path):
    from app import create_app
    from app.extensions import db

    app = create_app(make_test_config("sqlite:////nonexistent-dir/nowhere/switchboard.db", tmp_path))
    try:
        response = app.test_client().get("/api/v1/ping")
    finally:
        db.engine.dispose()
    assert response.status_code == 200
    assert response.json == {"ok": True}


def test_oversized_request_body_is_a_413_json_error(app, api_channel):
    app.config["MAX_CONTENT_LENGTH"] = 4096
    channel, token = api_channel
    response = app.test_client().post(
        f"/api/v1/channels/{channel.id}/inbound",
        json={"identity": {"kind": "email", "value": "a@example.com"}, "text": "x" * 10_000},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 413
    assert response.is_json
    assert response.json["error"]["code"] in ("request_entity_too_large", "content_too_large")
