"""The admin's view of the inbound mail spool in real Chromium, against a server whose SMTP listener is live.

Mail goes in over real SMTP; the embedded worker stores or rejects it; the admin finds both in the console.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import LiveServer, free_port
from tests.e2e.conftest import Backend, log_in

pytestmark = pytest.mark.e2e

MAILBOX = "support@e2e.example.com"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, console_built: Path) -> Iterator[LiveServer]:
    """A live server with its SMTP listener on (the other e2e modules run without one)."""
    smtp_port = free_port()
    live = LiveServer(
        tmp_path_factory.mktemp("e2e-mail"), WEB_THREADS="32", EMBEDDED_SMTP="1", SMTP_LISTEN=f"127.0.0.1:{smtp_port}"
    ).start()
    live.smtp_port = smtp_port  # type: ignore[attr-defined]
    yield live
    live.stop()


def send(port: int, mail_from: str, raw: bytes) -> str:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        client.mail(mail_from)
        client.rcpt(MAILBOX)
        code, reply = client.data(raw)
    assert code == 250, reply
    return reply.decode()


def customer_mail(sender: str, subject: str, text: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = MAILBOX
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain="e2e.example.com")
    mail.set_content(text)
    return mail.as_bytes()


def wait_for_spool(backend: Backend, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        items = backend.admin.get(backend.url("/api/v1/inbound-mail")).json()["items"]
        if len(items) >= count and all(item["status"] in ("stored", "rejected") for item in items):
            return items
        time.sleep(0.2)
    raise AssertionError(f"the worker did not process the spooled mail: {items}")


def test_the_admin_sees_stored_and_rejected_mail_in_the_console(
    new_page: Any, backend: Backend, server: LiveServer, artifacts: Path
) -> None:
    created = backend.admin.post(
        backend.url("/api/v1/channels"), json={"kind": "email", "name": "Support", "address": MAILBOX}
    )
    created.raise_for_status()
    admin = backend.create_user("Ada Admin", "ada@example.com", role="admin")

    mail = customer_mail("Anna Nowak <anna@example.com>", "Where is my parcel?", "Hello, where is my parcel?")
    send(server.smtp_port, "anna@example.com", mail)  # type: ignore[attr-defined]
    report = (
        b"From: MAILER-DAEMON@mx.example.org\r\nTo: " + MAILBOX.encode() + b"\r\nSubject: Undelivered Mail\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n--b\r\n"
        b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
        b"Final-Recipient: rfc822; nobody@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n--b\r\n"
        b"Content-Type: text/rfc822-headers\r\n\r\nMessage-ID: <never-sent-by-us@example.org>\r\n--b--\r\n"
    )
    send(server.smtp_port, "", report)  # type: ignore[attr-defined]
    stored, rejected = sorted(wait_for_spool(backend, 2), key=lambda item: item["id"])
    assert (stored["status"], rejected["status"]) == ("stored", "rejected")

    page = new_page()
    log_in(page, admin["email"], admin["password"])
    page.goto("/app/admin/inbound")
    section = page.get_by_test_id("inbound-mail")
    expect(section.get_by_text("No failed mail")).to_be_visible()  # the filter starts on failed mail

    section.get_by_label("Status").select_option("all")
    table = section.get_by_role("table", name="Inbound mail")
    stored_row = table.get_by_role("row").filter(has_text="anna@example.com")
    expect(stored_row).to_contain_text(f"stored as message {stored['message_id']}")
    rejected_row = table.get_by_role("row").filter(has_text="Bounce (null sender)")
    expect(rejected_row).to_contain_text("delivery report does not match any message sent from here")
    expect(rejected_row.get_by_role("link", name=f"Raw source of mail {rejected['id']}")).to_have_attribute(
        "href", f"/api/v1/inbound-mail/{rejected['id']}/raw"
    )
    expect(table.get_by_role("button", name="Retry")).to_have_count(0)  # nothing failed, nothing to retry
    page.screenshot(path=artifacts / "10-admin-inbound-mail.png")


def test_failed_mail_is_counted_on_the_admin_link_and_the_count_follows_a_retry_live(
    new_page: Any, backend: Backend, server: LiveServer
) -> None:
    from sqlalchemy import update

    from app.extensions import make_engine
    from app.models import InboundMail

    admin = backend.create_user("Fay Admin", "fay@example.com", role="admin")
    mail = customer_mail("Olga <olga@example.com>", "Refund", "Where is my refund?")
    send(server.smtp_port, "olga@example.com", mail)  # type: ignore[attr-defined]
    [spooled] = [item for item in wait_for_spool(backend, 3) if item["mail_from"] == "olga@example.com"]
    # What the worker leaves when every attempt failed (a database outage, say): set in the database directly,
    # as a live server cannot be made to fail on purpose.
    engine = make_engine(server.database_url)
    with engine.begin() as connection:
        connection.execute(
            update(InboundMail)
            .where(InboundMail.id == spooled["id"])
            .values(status="failed", outcome="OperationalError: disk I/O error", next_attempt_at=None)
        )
    engine.dispose()

    page = new_page()
    log_in(page, admin["email"], admin["password"])
    nav = page.get_by_role("navigation", name="Main navigation")
    expect(nav.get_by_label("1 failed mail waits for a retry")).to_be_visible()
    nav.get_by_role("link", name="Admin").click()
    page.get_by_role("button", name="Inbound mail").click()
    row = page.get_by_test_id("inbound-mail").get_by_role("row").filter(has_text="olga@example.com")
    expect(row).to_contain_text("OperationalError: disk I/O error")

    row.get_by_role("button", name="Retry").click()
    # The worker's event reaches the console over the socket: the count goes, without a reload.
    expect(nav.get_by_label("1 failed mail waits for a retry")).to_have_count(0)
    assert wait_for_spool(backend, 3)  # and the mail was processed again


def test_an_admin_turns_on_the_auto_reply_and_the_next_new_customer_gets_it(
    new_page: Any, backend: Backend, server: LiveServer
) -> None:
    channels = backend.admin.get(backend.url("/api/v1/channels")).json()["items"]
    if not any(channel["address"] == MAILBOX for channel in channels):
        backend.admin.post(
            backend.url("/api/v1/channels"), json={"kind": "email", "name": "Support", "address": MAILBOX}
        ).raise_for_status()
    admin = backend.create_user("Gus Admin", "gus@example.com", role="admin")

    page = new_page()
    log_in(page, admin["email"], admin["password"])
    page.goto("/app/admin/channels")
    page.get_by_role("button", name="Auto-reply of Support").click()
    form = page.get_by_test_id("auto-reply-form")
    form.get_by_label("Send").select_option("always")
    form.get_by_label("Text").fill("Thanks, {{ customer.first_name }}! Your case is #{{ conversation.number }}.")
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_role("button", name="Auto-reply of Support")).to_have_text("For every new conversation")

    mail = customer_mail("Piotr Nowak <piotr@example.com>", "Broken zip", "The zip on my jacket broke.")
    send(server.smtp_port, "piotr@example.com", mail)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = backend.admin.get(backend.url("/api/v1/conversations"), params={"q": "Broken zip"}).json()["items"]
        if found:
            messages = backend.admin.get(backend.url(f"/api/v1/conversations/{found[0]['id']}/messages")).json()
            replies = [item for item in messages["items"] if item["direction"] == "out" and item["automated"]]
            if replies:
                break
        time.sleep(0.2)
    else:
        raise AssertionError("no automatic reply was queued")
    number = found[0]["number"]
    assert [item["text"] for item in replies] == [f"Thanks, Piotr! Your case is #{number}."]
