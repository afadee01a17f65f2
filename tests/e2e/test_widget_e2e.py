"""The chat widget end to end: Debian's Chromium (driven by Playwright) on a shop page served from another origin,
a real gunicorn server, and an agent on a real Socket.IO connection.

Chromium comes from the session-wide ``browser`` fixture of tests/e2e/conftest.py (one Playwright per process).
The shop pages are served by a tiny http.server on 127.0.0.2 (the shop) and 127.0.0.3 (a site that is not on
the channel's allow-list); Switchboard runs on 127.0.0.1, so the widget iframe is cross-site, as in production.
"""

from __future__ import annotations

import functools
import http.server
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.chat.payload import user_hash
from tests.conftest import ON_CI, ROOT, LiveServer

pytestmark = pytest.mark.e2e

WIDGET_DIST = ROOT / "app" / "static" / "widget"
SECRET = "e2e-identity-secret"
TIMEOUT = 15_000


def _unavailable(reason: str) -> None:
    if ON_CI:
        pytest.fail(f"{reason}; CI must provide it")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def widget_built() -> Path:
    if not (WIDGET_DIST / "widget.js").is_file() or not (WIDGET_DIST / "index.html").is_file():
        if (ROOT / "frontend" / "node_modules").is_dir():
            subprocess.run(["npm", "run", "build:widget", "--silent"], cwd=ROOT / "frontend", check=True)
        else:
            _unavailable("the widget is not built: run `make frontend` (npm ci && npm run build)")
    return WIDGET_DIST


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, widget_built: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("widget-e2e")).start()
    yield live
    live.stop()


class Site:
    """A static site on its own loopback address: a different origin (and site) from Switchboard's."""

    def __init__(self, root: Path, address: str) -> None:
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer((address, 0), handler)
        self.origin = f"http://{address}:{self.httpd.server_address[1]}"
        self.root = root
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def page(self, name: str, script_src: str, channel_id: int, **data: str) -> str:
        attributes = "".join(f' data-{key.replace("_", "-")}="{value}"' for key, value in data.items())
        # The shop's own styles are hostile on purpose: none of them may leak into the chat.
        (self.root / name).write_text(
            f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<style>* {{ color: rgb(255, 0, 0) !important; font-family: serif !important; }}</style></head>
<body><h1>Our shop</h1>
<script src="{script_src}" data-channel="{channel_id}"{attributes} async></script></body></html>"""
        )
        return f"{self.origin}/{name}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, Site]]:
    shop = Site(tmp_path_factory.mktemp("shop"), "127.0.0.2")
    stranger = Site(tmp_path_factory.mktemp("stranger"), "127.0.0.3")
    yield shop, stranger
    shop.stop()
    stranger.stop()


class AgentSocket:
    """The agent console's live connection, as a real python-socketio client with the admin's cookie."""

    def __init__(self, url: str, http: requests.Session) -> None:
        import socketio

        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", lambda name, data=None: self.events.put((name, data)), namespace="/agent")
        cookie = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
        self.client.connect(
            url, namespaces=["/agent"], transports=["websocket"], headers={"Cookie": cookie}, wait_timeout=10
        )

    def wait_for(self, name: str, match: Callable[[Any], bool], timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event, data = self.events.get(timeout=left)
            except queue.Empty:
                break
            if event == name and match(data):
                return data
        raise AssertionError(f"no matching {name} event within {timeout}s")

    def close(self) -> None:
        self.client.disconnect()


@pytest.fixture(scope="module")
def setup(server: LiveServer, sites: tuple[Site, Site]) -> dict[str, Any]:
    """A chat channel embeddable by the shop only, and a customer the shop knows as user 42."""
    shop, _ = sites
    admin = server.session()
    response = admin.post(
        f"{server.url}/api/v1/channels",
        json={
            "kind": "chat",
            "name": "Shop chat",
            "settings": {
                "allowed_origins": [shop.origin],
                "identity_secret": SECRET,
                "prechat_fields": [{"name": "name"}],
            },
        },
    )
    response.raise_for_status()
    channel_id = response.json()["id"]
    api = admin.post(f"{server.url}/api/v1/channels", json={"kind": "api", "name": "Shop backend"})
    api.raise_for_status()
    known = requests.post(
        f"{server.url}/api/v1/channels/{api.json()['id']}/inbound",
        json={"identity": {"kind": "external", "value": "shop-user-42"}, "name": "Anna Known", "text": "Order #1?"},
        headers={"Authorization": f"Bearer {api.json()['token']}"},
        timeout=10,
    )
    known.raise_for_status()
    return {"admin": admin, "channel_id": channel_id, "known_customer": known.json()["customer"]["id"]}


@pytest.fixture
def agent(server: LiveServer, setup: dict[str, Any]) -> Iterator[AgentSocket]:
    socket = AgentSocket(server.url, setup["admin"])
    yield socket
    socket.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[[], Any]]:
    """A page in a fresh browser context: another visitor with empty storage."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT)  # a loaded CI machine is slower than a laptop
    contexts: list[Any] = []
    errors: list[str] = []

    def _open() -> Any:
        context = browser.new_context(locale="en-US")
        context.set_default_timeout(TIMEOUT)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield _open
    for context in contexts:
        context.close()
    assert not errors, f"uncaught errors on the page: {errors}"


def _open_chat(page: Any) -> Any:
    page.get_by_role("button", name="Open chat").click()
    return page.frame_locator("iframe[title='Chat']")


def _start_chat(chat: Any, name: str) -> None:
    chat.get_by_label("Name").fill(name)
    chat.get_by_role("button", name="Start chat").click()


def _send(chat: Any, text: str) -> None:
    box = chat.get_by_role("textbox", name="Write a message…")
    box.fill(text)
    box.press("Enter")


def test_visitor_and_agent_chat_live_across_origins(
    server: LiveServer, sites: tuple[Site, Site], setup: dict[str, Any], agent: AgentSocket, new_page: Any
) -> None:
    from playwright.sync_api import expect

    shop, _ = sites
    url = shop.page("shop.html", f"{server.url}/widget.js", setup["channel_id"])
    page = new_page()
    page.goto(url)
    # Nothing but the loader until the visitor asks for the chat.
    assert page.locator("iframe").count() == 0
    chat = _open_chat(page)
    _start_chat(chat, "Anna")
    _send(chat, "Hello from the shop page")

    created = agent.wait_for("message.created", lambda data: data["message"]["text"] == "Hello from the shop page")
    message = created["message"]
    assert message["channel"] == "chat"
    assert message["meta"]["origin"] == shop.origin
    expect(chat.get_by_text("Sent", exact=True)).to_be_visible()

    reply = setup["admin"].post(
        f"{server.url}/api/v1/conversations/{message['conversation_id']}/messages",
        json={"body": "Hi Anna, <b>your</b> parcel left today."},
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["channel"] == "chat"  # the visitor is here: the reply stays in the chat
    bubble = chat.get_by_text("Hi Anna, <b>your</b> parcel left today.")
    expect(bubble).to_be_visible()  # live, no reload; and as text, not HTML
    # The shop's hostile styles stop at the iframe.
    assert bubble.evaluate("el => getComputedStyle(el).color") != "rgb(255, 0, 0)"
    # The visitor token lives in the iframe's storage; the shop's page holds only a "chat is on" flag.
    assert page.evaluate("Object.keys(localStorage)") == [f"switchboard-chat-{setup['channel_id']}"]

    page.reload()
    chat = page.frame_locator("iframe[title='Chat']")  # loaded at once: a conversation exists
    page.get_by_role("button", name="Open chat").click()
    expect(chat.get_by_text("Hello from the shop page")).to_be_visible()
    expect(chat.get_by_text("Hi Anna, <b>your</b> parcel left today.")).to_be_visible()

    stranger = new_page()
    stranger.goto(url)
    other_chat = _open_chat(stranger)
    expect(other_chat.get_by_role("button", name="Start chat")).to_be_visible()
    _start_chat(other_chat, "Bob")
    expect(other_chat.get_by_role("textbox", name="Write a message…")).to_be_visible()
    assert other_chat.get_by_text("Hello from the shop page").count() == 0
    assert other_chat.get_by_text("parcel left today").count() == 0


def test_site_not_on_the_allow_list_is_refused(
    server: LiveServer, sites: tuple[Site, Site], setup: dict[str, Any], new_page: Any
) -> None:
    import socketio

    _, stranger = sites
    url = stranger.page("copy.html", f"{server.url}/widget.js", setup["channel_id"])
    page = new_page()
    blocked: list[str] = []
    page.on("console", lambda message: blocked.append(message.text))
    page.goto(url)
    with page.expect_console_message(lambda message: "frame-ancestors" in message.text):
        page.get_by_role("button", name="Open chat").click()
    # The browser refused to render the chat inside the stranger's page.
    assert page.frame_locator("iframe[title='Chat']").locator("#sb-root").count() == 0

    # And the API and the socket refuse that origin when asked directly.
    session = requests.post(
        f"{server.url}/api/v1/widget/session",
        json={"channel_id": setup["channel_id"], "host": stranger.origin},
        headers={"Origin": stranger.origin},
        timeout=10,
    )
    assert session.status_code == 403
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(
            server.url,
            namespaces=["/widget"],
            transports=["websocket"],
            headers={"Origin": stranger.origin},
            auth={"channel_id": setup["channel_id"], "token": "x"},
            wait_timeout=10,
        )


def test_verified_shop_user_joins_their_customer_and_a_forged_hash_is_refused(
    server: LiveServer, sites: tuple[Site, Site], setup: dict[str, Any], new_page: Any
) -> None:
    from playwright.sync_api import expect

    shop, _ = sites
    channel_id = setup["channel_id"]
    verified = shop.page(
        "account.html",
        f"{server.url}/widget.js",
        channel_id,
        user_id="shop-user-42",
        user_hash=user_hash(SECRET, "shop-user-42"),
    )
    page = new_page()
    page.goto(verified)
    chat = _open_chat(page)
    # The shop vouched for this user and we know their name: no pre-chat form.
    _send(chat, "I am logged in to the shop")
    expect(chat.get_by_text("Sent", exact=True)).to_be_visible()  # acknowledged: committed
    timeline = setup["admin"].get(f"{server.url}/api/v1/customers/{setup['known_customer']}/timeline")
    assert timeline.status_code == 200, timeline.text
    assert "I am logged in to the shop" in timeline.text  # one customer: the shop's user 42

    forged = shop.page(
        "forged.html",
        f"{server.url}/widget.js",
        channel_id,
        user_id="shop-user-42",
        user_hash=user_hash("not-the-secret", "shop-user-42"),
    )
    intruder = new_page()
    intruder.goto(forged)
    with intruder.expect_response(lambda response: "/api/v1/widget/session" in response.url) as answer:
        chat = _open_chat(intruder)
    assert answer.value.status == 403
    expect(chat.get_by_text("Something went wrong")).to_be_visible()
    assert chat.get_by_text("I am logged in to the shop").count() == 0


def test_offline_visitor_leaves_an_email_and_the_reply_goes_there(
    server: LiveServer, sites: tuple[Site, Site], setup: dict[str, Any], agent: AgentSocket, new_page: Any
) -> None:
    from playwright.sync_api import expect

    shop, _ = sites
    admin = setup["admin"]
    closed = admin.post(
        f"{server.url}/api/v1/channels",
        json={
            "kind": "chat",
            "name": "After-hours chat",
            "settings": {"allowed_origins": [shop.origin], "prechat_fields": []},
            "business_hours": {"timezone": "UTC", "days": {}},  # never open
        },
    )
    closed.raise_for_status()
    mailbox = admin.post(
        f"{server.url}/api/v1/channels", json={"kind": "email", "name": "Support", "address": "help@shop.example"}
    )
    assert mailbox.status_code in (201, 409), mailbox.text
    url = shop.page("closed.html", f"{server.url}/widget.js", closed.json()["id"], locale="pl")
    page = new_page()
    page.goto(url)
    page.get_by_role("button", name="Otwórz czat").click()
    chat = page.frame_locator("iframe[title='Czat']")
    expect(chat.get_by_text("Jesteśmy poza godzinami pracy", exact=False)).to_be_visible()
    chat.get_by_role("textbox", name="E-mail").fill("night.owl@example.com")
    chat.get_by_role("button", name="Zapisz").click()
    expect(chat.get_by_text("Odpowiemy na night.owl@example.com", exact=False)).to_be_visible()
    box = chat.get_by_role("textbox", name="Napisz wiadomość…")
    box.fill("Czy jesteście?")
    box.press("Enter")
    created = agent.wait_for("message.created", lambda data: data["message"]["text"] == "Czy jesteście?")
    conversation_url = f"{server.url}/api/v1/conversations/{created['message']['conversation_id']}"

    page.context.close()  # the visitor leaves
    deadline = time.monotonic() + 15
    while admin.get(conversation_url).json()["default_reply_channel"] != "email":
        assert time.monotonic() < deadline, "the reply channel did not switch to email after the visitor left"
        time.sleep(0.2)
    answer = admin.post(f"{conversation_url}/messages", json={"body": "Dzień dobry, już odpowiadamy."})
    assert answer.status_code == 201, answer.text
    assert answer.json()["channel"] == "email"
