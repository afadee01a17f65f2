"""Shared fixtures: an app on a fresh database (SQLite by default, PostgreSQL with --db=postgresql or
SWITCHBOARD_TEST_DB=postgresql), logged-in clients, a live gunicorn server, and helpers to find the corpus.

Every test starts from empty tables and may commit for real (worker threads, live servers and concurrency
tests need real commits), so isolation is by emptying the tables afterwards, not by rollback.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PASSWORD = "correct horse battery staple"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        default=os.environ.get("SWITCHBOARD_TEST_DB", "sqlite"),
        choices=["sqlite", "postgresql"],
        help="database backend for the whole run",
    )


def corpus_dir(*parts: str) -> Path:
    """Return a folder of the shared corpus, or skip the test with the reason it is missing."""
    path = CORPUS.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"shared corpus not found at {path} (it sits beside the project on developer and CI machines)")
    return path


def _service_reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, port: int) -> None:
    """Skip (or, on CI, fail) when a real service the test needs is not running."""
    if _service_reachable("127.0.0.1", port):
        return
    message = f"{name} is not running on 127.0.0.1:{port}"
    if ON_CI:
        pytest.fail(f"{message}; CI must provide it")
    pytest.skip(f"{message}; start it to run this test (CI runs it)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresDatabase:
    """A throwaway PostgreSQL database, created for this run and dropped after it."""

    def __init__(self) -> None:
        self.name = f"sb_test_{uuid.uuid4().hex[:12]}"
        self.admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.name}"

    def drop(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[PostgresDatabase]:
    require_service("PostgreSQL", 5432)
    database = PostgresDatabase()
    yield database
    database.drop()


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The database every `app` of this run uses, with the schema created once."""
    from app.extensions import make_engine
    from app.models import Base

    if request.config.getoption("--db") == "postgresql":
        database = request.getfixturevalue("postgres_database")
        url = database.url
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'switchboard.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    return url


def empty_tables(engine: Any) -> None:
    from app.models import Base

    tables = list(reversed(Base.metadata.sorted_tables))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{table.name}"' for table in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())


def make_test_config(database_url: str, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    config = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key",
        "ATTACHMENTS_DIR": str(tmp_path / "attachments"),
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "EMBEDDED_WORKER": False,
        "EMBEDDED_SMTP": False,
        "RATELIMIT_ENABLED": False,
        "OUTBOX_BACKOFF_BASE_SECONDS": 0.01,
        "OUTBOX_BACKOFF_MAX_SECONDS": 0.05,
        "PUBLIC_URL": "http://testserver.local",
        "MAIL_DOMAIN": "support.example.com",
        "DEFAULT_PHONE_REGION": "PL",
    }
    config.update(overrides)
    return config


@pytest.fixture
def app_config(database_url: str, tmp_path: Path) -> dict[str, Any]:
    """Settings for the `app` fixture; a test may change them before asking for `app`."""
    return make_test_config(database_url, tmp_path)


@pytest.fixture
def app(app_config: dict[str, Any]) -> Iterator[Any]:
    from flask import g

    from app import create_app
    from app.extensions import db

    application = create_app(app_config)
    # Requests reuse the app context a test holds, and with it `g`: forget Flask-Login's cached user on each
    # request, or every client of a test would act as whoever logged in last.
    application.url_value_preprocessor(lambda _endpoint, _values: g.pop("_login_user", None))
    with application.app_context():
        yield application
        db.session.remove()
    empty_tables(db.engine)
    db.engine.dispose()


@pytest.fixture
def session(app: Any) -> Any:
    from app.extensions import db

    return db.session


class ApiClient:
    """A Flask test client that logs in and sends the CSRF header like the console does."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.csrf: str | None = None
        self.user: dict[str, Any] | None = None

    def login(self, email: str, password: str = PASSWORD) -> Any:
        response = self.client.post("/api/v1/auth/login", json={"email": email, "password": password})
        if response.status_code == 200:
            self.csrf = response.json["csrf_token"]
            self.user = response.json["user"]
        return response

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        merged = dict(headers or {})
        if self.csrf:
            merged.setdefault("X-CSRF-Token", self.csrf)
        return merged

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, **kwargs)

    def post(self, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.client.post(url, headers=self._headers(headers), **kwargs)

    def put(self, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.client.put(url, headers=self._headers(headers), **kwargs)

    def patch(self, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.client.patch(url, headers=self._headers(headers), **kwargs)

    def delete(self, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.client.delete(url, headers=self._headers(headers), **kwargs)


@pytest.fixture
def make_user(app: Any) -> Any:
    from app.services.users import create_user

    counter = iter(range(1, 10_000))

    def _make(role: str = "agent", email: str | None = None, name: str | None = None, **kwargs: Any) -> Any:
        n = next(counter)
        return create_user(
            email or f"{role}{n}@staff.example.com", name or f"{role.title()} {n}", PASSWORD, role, **kwargs
        )

    return _make


def _client_for(app: Any, make_user: Any, role: str) -> ApiClient:
    user = make_user(role)
    api = ApiClient(app.test_client())
    assert api.login(user.email).status_code == 200
    return api


@pytest.fixture
def agent_client(app: Any, make_user: Any) -> ApiClient:
    return _client_for(app, make_user, "agent")


@pytest.fixture
def supervisor_client(app: Any, make_user: Any) -> ApiClient:
    return _client_for(app, make_user, "supervisor")


@pytest.fixture
def admin_client(app: Any, make_user: Any) -> ApiClient:
    return _client_for(app, make_user, "admin")


@pytest.fixture
def anon_client(app: Any) -> ApiClient:
    return ApiClient(app.test_client())


@pytest.fixture
def api_channel(app: Any) -> tuple[Any, str]:
    """An api channel and its bearer token."""
    from app.services.channels import create_channel

    return create_channel("api", "Shop backend")


@pytest.fixture
def push(app: Any, api_channel: tuple[Any, str]) -> Any:
    """Push an inbound message through the api channel endpoint, as another system would."""
    channel, token = api_channel
    client = app.test_client()

    def _push(kind: str = "email", value: str = "anna@example.com", text: str = "Hello", **body: Any) -> Any:
        payload = {"identity": {"kind": kind, "value": value}, "text": text, **body}
        return client.post(
            f"/api/v1/channels/{channel.id}/inbound", json=payload, headers={"Authorization": f"Bearer {token}"}
        )

    return _push


class LiveServer:
    """A real gunicorn process serving the app on a free port, against its own fresh database."""

    def __init__(self, tmp: Path, database_url: str | None = None, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_email = "admin@example.com"
        self.admin_password = secrets.token_urlsafe(12)
        self.database_url = database_url or f"sqlite:///{tmp / 'live.db'}"
        self.env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "DATABASE_URL": self.database_url,
            "SECRET_KEY": "live-secret",
            "SWITCHBOARD_INSTANCE": str(tmp / "instance"),
            "PUBLIC_URL": self.url,
            "ADMIN_EMAIL": self.admin_email,
            "ADMIN_PASSWORD": self.admin_password,
            "EMBEDDED_SMTP": "0",
            "OUTBOX_POLL_SECONDS": "0.2",
            "RATELIMIT_ENABLED": "0",
            **env,
        }
        self.log = tmp / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> LiveServer:
        venv_bin = Path(sys.executable).parent
        subprocess.run(
            [str(venv_bin / "flask"), "--app", "wsgi", "setup"], cwd=ROOT, env=self.env, check=True, capture_output=True
        )
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(venv_bin / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def session(self, email: str | None = None, password: str | None = None) -> requests.Session:
        """A requests session logged in (as the admin by default) with the CSRF header set."""
        http = requests.Session()
        response = http.post(
            f"{self.url}/api/v1/auth/login",
            json={"email": email or self.admin_email, "password": password or self.admin_password},
        )
        response.raise_for_status()
        http.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        return http


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def events(app: Any) -> Iterator[list[Any]]:
    """Every domain event delivered (after commit) while the test runs."""
    from app.events import domain_event

    delivered: list[Any] = []

    def _receive(_sender: Any, event: Any) -> None:
        delivered.append(event)

    domain_event.connect(_receive)
    yield delivered
    domain_event.disconnect(_receive)


class RequestScopedClient(FlaskClient):
    """A test client whose every request runs in its own app context, as in production.

    The ``app`` fixture keeps one app context open for the whole test, and Flask reuses it for each test
    request, so ``g`` (where Flask-Login caches the current user) and the database session would carry over
    from one request into the next: a second logged-in client would act as the first, and relationships
    loaded by an earlier request would look stale. Here each request gets a fresh ``g`` and ends by removing
    its session, like a request in the running server.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        with self.application.app_context():
            response = super().open(*args, **kwargs)
            response.get_data()  # read the body while the request's context is still there
            return response


@pytest.fixture
def request_scoped_clients(app: Any) -> Iterator[None]:
    """Opt in (e.g. autouse in a folder's conftest) to give every test request its own app context."""
    previous = app.test_client_class
    app.test_client_class = RequestScopedClient
    yield
    app.test_client_class = previous
