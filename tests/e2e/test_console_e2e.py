"""The agent console in real Chromium against a running server: the agent's day, end to end.

Screenshots of the main screens go to test-artifacts/e2e/ (git-ignored).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Backend, log_in

pytestmark = pytest.mark.e2e


def rows(page: Any) -> Any:
    return page.get_by_test_id("conversation-list").get_by_role("option")


def row(page: Any, text: str) -> Any:
    return rows(page).filter(has_text=text)


def test_message_arrives_live_reply_shows_delivery_merge_shows_both_histories(
    new_page: Any, backend: Backend, artifacts: Path
) -> None:
    agent = backend.create_user("Ola Agent", "ola@example.com", role="admin")
    page = new_page()

    page.goto("/")
    expect(page.get_by_test_id("login-submit")).to_be_visible()
    page.screenshot(path=artifacts / "01-login.png")
    log_in(page, agent["email"], agent["password"])
    page.get_by_test_id("view-all").click()
    expect(page.get_by_test_id("inbox-empty")).to_be_visible()

    # A message arrives through the API channel and appears in the list without a reload.
    backend.push(
        "email",
        "anna@example.com",
        "Where is my parcel? It should have come yesterday.",
        name="Anna Kowalska",
        subject="Parcel late",
    )
    expect(row(page, "Anna Kowalska")).to_be_visible()
    expect(row(page, "Anna Kowalska")).to_contain_text("Parcel late")
    backend.push("phone", "+48600999888", "Hi, it's Anna again, from my mobile.", name="Anna K.")
    expect(rows(page)).to_have_count(2)
    expect(rows(page).first).to_contain_text("Anna K.")  # newest activity first

    # Open it.
    row(page, "Anna Kowalska").click()
    messages = page.get_by_test_id("messages")
    expect(messages).to_contain_text("Where is my parcel?")
    sidebar = page.get_by_test_id("customer-sidebar")
    expect(sidebar).to_contain_text("anna@example.com")

    # Reply; the outbound message shows its delivery status, updated live by the outbox worker.
    page.get_by_test_id("reply-text").fill("Sorry for the wait, Anna. The parcel left our warehouse today.")
    page.get_by_test_id("reply-text").press("Control+Enter")
    outbound = page.locator(".message-out").filter(has_text="The parcel left our warehouse today")
    expect(outbound).to_be_visible()
    expect(outbound.locator(".delivery")).to_have_attribute("data-status", re.compile("queued|sending|sent|delivered"))
    expect(outbound.locator(".delivery")).to_have_attribute("data-status", re.compile("sent|delivered"))
    expect(page.get_by_test_id("reply-text")).to_have_value("")
    page.screenshot(path=artifacts / "02-conversation.png")

    # Add a phone identity.
    sidebar.get_by_test_id("identity-kind").select_option("phone")
    sidebar.get_by_test_id("identity-value").fill("+48 600 100 200")
    sidebar.get_by_role("button", name="Add").click()
    identities = sidebar.get_by_test_id("identities")
    expect(identities).to_contain_text("+48600100200")
    expect(identities.locator("li[data-kind=phone]")).to_contain_text("Not verified")

    # Merge the mobile-number customer into this one.
    sidebar.get_by_test_id("merge-open").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_test_id("merge-search").fill("600999")
    dialog.get_by_test_id("merge-candidate").filter(has_text="Anna K.").click()
    expect(dialog.get_by_test_id("merge-confirm-text")).to_contain_text("Merge Anna K. into Anna Kowalska?")
    page.screenshot(path=artifacts / "03-merge-confirm.png")
    dialog.get_by_test_id("merge-confirm").click()
    expect(page.get_by_role("dialog")).to_have_count(0)

    # The sidebar shows both histories and every identity.
    history = sidebar.get_by_test_id("customer-history")
    expect(history.locator("li")).to_have_count(2)
    expect(history).to_contain_text("Parcel late")
    expect(identities).to_contain_text("+48600999888")
    expect(identities).to_contain_text("anna@example.com")
    page.screenshot(path=artifacts / "04-customer-merged.png")

    # Both conversations now name the surviving customer in the list too.
    expect(rows(page).filter(has_text="Anna Kowalska")).to_have_count(2)

    # Switch the UI to Polish: every label, dates and numbers follow.
    page.get_by_test_id("locale").select_option("pl")
    expect(page.get_by_test_id("view-unassigned")).to_have_text("Nieprzypisane")
    expect(page.get_by_role("navigation", name="Nawigacja główna")).to_contain_text("Skrzynka")
    expect(page.get_by_test_id("send")).to_have_text("Wyślij")
    expect(page.locator("html")).to_have_attribute("lang", "pl")
    page.screenshot(path=artifacts / "05-inbox-polish.png")
    page.reload()
    expect(page.get_by_test_id("view-unassigned")).to_have_text("Nieprzypisane")  # remembered


def test_keyboard_presence_wrapup_and_narrow_screen(new_page: Any, backend: Backend, artifacts: Path) -> None:
    ola = backend.create_user("Ola Nowak", "ola.keys@example.com", role="admin")
    bartek = backend.create_user("Bartek Zieliński", "bartek@example.com")
    backend.create_topic("Parcel late")
    backend.create_topic("Refund", colour="#dc2626")
    for n in range(3):
        backend.push("email", f"customer{n}@example.com", f"Question number {n}", name=f"Customer {n}")

    page = new_page(width=1024, height=720)
    log_in(page, ola["email"], ola["password"])
    page.get_by_test_id("view-all").click()
    # / jumps to the search box (the server is shared with the other tests: find just ours)
    page.locator("body").press("/")
    expect(page.get_by_test_id("search")).to_be_focused()
    page.get_by_test_id("search").fill("Question number")
    expect(rows(page)).to_have_count(3)
    page.get_by_test_id("search").press("Escape")

    # j/k move, Enter opens.
    page.locator("body").press("j")
    expect(rows(page).nth(1)).to_have_attribute("aria-selected", "true")
    page.locator("body").press("k")
    page.locator("body").press("j")
    page.locator("body").press("Enter")
    expect(page.get_by_test_id("messages")).to_contain_text("Question number 1")
    page.wait_for_url(re.compile(r"/app/inbox/\d+"))

    # Another agent opens the same conversation: "viewing", then "typing".
    other = new_page()
    log_in(other, bartek["email"], bartek["password"])
    other.goto(page.url.replace("view=all", "view=all"))
    expect(other.get_by_test_id("messages")).to_contain_text("Question number 1")
    expect(page.get_by_test_id("presence")).to_contain_text("Bartek Zieliński is viewing")
    other.get_by_test_id("reply-text").press_sequentially("Let me")
    expect(page.get_by_test_id("presence")).to_contain_text("Bartek Zieliński is typing")

    # r replies, n writes a note, ? shows the shortcuts.
    page.locator("body").press("r")
    expect(page.get_by_test_id("reply-text")).to_be_focused()
    page.get_by_test_id("reply-text").press("Escape")
    page.locator("body").press("n")
    expect(page.get_by_test_id("mode-note")).to_have_attribute("aria-selected", "true")
    page.get_by_test_id("reply-text").fill("@Bar")
    expect(page.locator(".popup")).to_contain_text("Bartek Zieliński")
    page.get_by_test_id("reply-text").press("Enter")
    expect(page.get_by_test_id("reply-text")).to_have_value("@Bartek Zieliński ")
    page.get_by_test_id("reply-text").press("Control+Enter")
    expect(page.locator(".message-note")).to_contain_text("@Bartek Zieliński")
    page.get_by_test_id("reply-text").press("Escape")
    page.locator("body").press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.screenshot(path=artifacts / "06-shortcuts-1024.png")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)

    # e resolves through the wrap-up prompt, which asks for the topic.
    page.locator("body").press("e")
    wrapup = page.get_by_role("dialog", name="Resolve conversation")
    expect(wrapup).to_be_visible()
    wrapup.get_by_role("searchbox", name="Filter topics").fill("late")
    wrapup.get_by_label("Parcel late").check()
    page.screenshot(path=artifacts / "07-wrapup-1024.png")
    wrapup.get_by_test_id("wrapup-resolve").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_test_id("conversation-status")).to_have_text("Resolved")
    expect(page.locator(".conversation-title .topic-chips")).to_contain_text("Parcel late")
    expect(rows(page)).to_have_count(2)  # left the "open" view live

    # Every control in the main screen has an accessible name.
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('button, select, input, textarea, [role=option]')]
            .filter((el) => el.offsetParent !== null)
            .filter((el) => !(el.getAttribute('aria-label') || el.labels?.length || el.textContent.trim()
                              || el.getAttribute('title') || el.getAttribute('placeholder')))
            .map((el) => el.outerHTML.slice(0, 120))"""
    )
    assert unnamed == []

    # The supervisor and admin screens open (the reports may not be installed yet).
    page.goto("/app/supervisor")
    expect(page.get_by_role("heading", name="Reports")).to_be_visible()
    page.screenshot(path=artifacts / "08-supervisor.png")
    page.goto("/app/admin/users")
    expect(page.get_by_role("cell", name="bartek@example.com")).to_be_visible()
    page.screenshot(path=artifacts / "09-admin-users.png")
