"""End-to-end fixtures: Debian's Chromium driven by Playwright against a real gunicorn server.

Playwright never downloads a browser here: it launches /usr/bin/chromium (installed by
tools/ensure-chromium.sh, which `make test` runs). The console must be built (frontend/dist/console);
`make test` builds it first.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import ON_CI, ROOT, LiveServer

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DIST = ROOT / "frontend" / "dist" / "console"
ARTIFACTS = ROOT / "test-artifacts" / "e2e"


def _unavailable(reason: str) -> None:
    if ON_CI:
        pytest.fail(f"{reason}; CI must provide it")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's chromium, installed on first use by the same script `make test` runs."""
    if not CHROMIUM.exists():
        result = subprocess.run(["sh", str(ROOT / "tools" / "ensure-chromium.sh")], capture_output=True, text=True)
        if result.returncode != 0 or not CHROMIUM.exists():
            _unavailable(f"chromium is not installed at {CHROMIUM} ({result.stderr.strip()[-300:]})")
    return CHROMIUM


@pytest.fixture(scope="session")
def console_built() -> Path:
    """The built console; built here when node_modules is present but the build is not."""
    if not (DIST / "index.html").is_file():
        if (ROOT / "frontend" / "node_modules").is_dir():
            subprocess.run(["npm", "run", "build:console", "--silent"], cwd=ROOT / "frontend", check=True)
        else:
            _unavailable("the console is not built: run `make frontend` (npm ci && npm run build)")
    return DIST


@pytest.fixture(scope="session")
def browser(chromium_path: Path, console_built: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, console_built: Path) -> Iterator[LiveServer]:
    """One live server per test module (starting one costs a couple of seconds); each test makes its own data."""
    live = LiveServer(tmp_path_factory.mktemp("e2e"), WEB_THREADS="32").start()
    yield live
    live.stop()


class Backend:
    """Set up data the way other systems and admins would: through the REST API."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.admin = server.session()
        self._api_channel: tuple[int, str] | None = None

    def url(self, path: str) -> str:
        return f"{self.server.url}{path}"

    def create_user(self, name: str, email: str, role: str = "agent", password: str = "agent-password-1") -> dict:
        response = self.admin.post(
            self.url("/api/v1/users"), json={"name": name, "email": email, "password": password, "role": role}
        )
        response.raise_for_status()
        return {**response.json(), "password": password}

    def create_topic(self, name: str, colour: str = "#2563eb") -> dict:
        response = self.admin.post(self.url("/api/v1/topics"), json={"name": name, "colour": colour})
        response.raise_for_status()
        return response.json()

    def api_channel(self) -> tuple[int, str]:
        if self._api_channel is None:
            response = self.admin.post(self.url("/api/v1/channels"), json={"kind": "api", "name": "Shop backend"})
            response.raise_for_status()
            self._api_channel = (response.json()["id"], response.json()["token"])
        return self._api_channel

    def push(self, kind: str, value: str, text: str, name: str | None = None, subject: str | None = None) -> dict:
        """An inbound message from the shop's backend through the api channel."""
        channel_id, token = self.api_channel()
        body: dict[str, Any] = {"identity": {"kind": kind, "value": value}, "text": text}
        if name:
            body["name"] = name
        if subject:
            body["subject"] = subject
        response = requests.post(
            self.url(f"/api/v1/channels/{channel_id}/inbound"),
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()


@pytest.fixture
def backend(server: LiveServer) -> Backend:
    return Backend(server)


@pytest.fixture
def new_page(browser: Any, server: LiveServer) -> Iterator[Callable[..., Any]]:
    """Open pages in fresh browser contexts (separate cookies, like separate agents' computers)."""
    contexts: list[Any] = []
    errors: list[str] = []

    def _open(width: int = 1280, height: int = 800, locale: str = "en-US") -> Any:
        context = browser.new_context(viewport={"width": width, "height": height}, locale=locale, base_url=server.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield _open
    for context in contexts:
        context.close()
    assert not errors, f"uncaught errors in the console: {errors}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def log_in(page: Any, email: str, password: str) -> None:
    page.goto("/")
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url("**/app/inbox**")
