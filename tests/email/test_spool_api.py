"""The spool's admin API: list what became of each mail, download a mail's raw source, retry failed mail."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditLog, Message
from tests.email.conftest import crlf, load_spool, process_spool, release_session, smtp_send, update_spool
from tests.email.test_loopguard_and_bounces import dsn
from tests.email.test_threading_round_trip import customer_mail


def fail(inbound_mail_id: int, reason: str = "RuntimeError: parser bug") -> None:
    """What the worker leaves after the last attempt failed."""
    update_spool(inbound_mail_id, status="failed", attempts=8, next_attempt_at=None, outcome=reason)


def test_admins_list_spooled_mail_newest_first_by_status_and_page_on(admin_client: Any, smtp_server: Any):
    stored_raw = customer_mail(body="stored")
    stored = smtp_send(smtp_server.port, stored_raw)
    rejected = smtp_send(smtp_server.port, dsn("<unknown@example.org>"), mail_from="")
    failed = smtp_send(smtp_server.port, customer_mail("jan@example.com"), mail_from="jan@example.com", process=False)
    fail(failed.spool_id or 0)

    everything = admin_client.get("/api/v1/inbound-mail")
    assert everything.status_code == 200, everything.json
    assert [item["id"] for item in everything.json["items"]] == [failed.spool_id, rejected.spool_id, stored.spool_id]
    assert everything.json["next_before"] is None
    first = everything.json["items"][2]
    assert first["status"] == "stored"
    assert first["message_id"] == stored.message_id
    assert first["outcome"] == f"stored as message {stored.message_id}"
    assert first["mail_from"] == "anna@example.com"
    assert first["recipients"] == ["support@support.example.com"]
    assert first["size"] == len(crlf(stored_raw))

    only_failed = admin_client.get("/api/v1/inbound-mail?status=failed").json["items"]
    assert [(item["id"], item["outcome"]) for item in only_failed] == [(failed.spool_id, "RuntimeError: parser bug")]
    only_rejected = admin_client.get("/api/v1/inbound-mail?status=rejected").json["items"]
    assert [item["outcome"] for item in only_rejected] == ["delivery report does not match any message sent from here"]

    page = admin_client.get("/api/v1/inbound-mail?limit=2").json
    assert [item["id"] for item in page["items"]] == [failed.spool_id, rejected.spool_id]
    assert page["next_before"] == rejected.spool_id
    rest = admin_client.get(f"/api/v1/inbound-mail?limit=2&before={page['next_before']}").json
    assert [item["id"] for item in rest["items"]] == [stored.spool_id]

    one = admin_client.get(f"/api/v1/inbound-mail/{rejected.spool_id}")
    assert one.status_code == 200
    assert one.json["status"] == "rejected"


def test_an_admin_retries_a_failed_mail_and_the_worker_stores_it(app: Any, admin_client: Any, smtp_server: Any):
    sent = customer_mail(body="Please help")
    result = smtp_send(smtp_server.port, sent, process=False)
    inbound_mail_id = result.spool_id or 0
    fail(inbound_mail_id)

    raw = admin_client.get(f"/api/v1/inbound-mail/{inbound_mail_id}/raw")
    assert raw.status_code == 200
    assert raw.mimetype == "message/rfc822"
    assert raw.data == crlf(sent)
    assert f"inbound-{inbound_mail_id}.eml" in raw.headers["Content-Disposition"]

    retried = admin_client.post(f"/api/v1/inbound-mail/{inbound_mail_id}/retry")
    assert retried.status_code == 200, retried.json
    assert (retried.json["status"], retried.json["attempts"]) == ("queued", 0)
    release_session()
    audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "inbound_mail.retried")).all()
    assert [(entry.target_id, entry.actor_id) for entry in audit] == [(inbound_mail_id, admin_client.user["id"])]

    assert process_spool(app) == 1
    row = load_spool(inbound_mail_id)
    assert row.status == "stored"
    release_session()
    assert db.session.get_one(Message, row.message_id).text == "Please help"

    again = admin_client.post(f"/api/v1/inbound-mail/{inbound_mail_id}/retry")  # stored now: nothing to retry
    assert again.status_code == 409
    assert again.json["error"]["code"] == "not_failed"
    assert load_spool(inbound_mail_id).status == "stored"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/inbound-mail"),
        ("get", "/api/v1/inbound-mail/counts"),
        ("get", "/api/v1/inbound-mail/1"),
        ("get", "/api/v1/inbound-mail/1/raw"),
        ("post", "/api/v1/inbound-mail/1/retry"),
    ],
)
def test_only_admins_see_the_spool(
    agent_client: Any, supervisor_client: Any, anon_client: Any, smtp_server: Any, method: str, path: str
):
    smtp_send(smtp_server.port, customer_mail(), process=False)  # spool row 1 exists
    assert getattr(anon_client, method)(path).status_code == 401
    assert getattr(agent_client, method)(path).status_code == 403
    assert getattr(supervisor_client, method)(path).status_code == 403
    assert load_spool(1).status == "queued"  # nothing changed


def test_bad_queries_and_unknown_mail_get_clear_errors(admin_client: Any):
    bad_status = admin_client.get("/api/v1/inbound-mail?status=lost")
    assert bad_status.status_code == 422
    assert "status" in bad_status.json["error"]["fields"]
    bad_limit = admin_client.get("/api/v1/inbound-mail?limit=0")
    assert bad_limit.status_code == 422
    assert "limit" in bad_limit.json["error"]["fields"]
    for path in ("/api/v1/inbound-mail/999", "/api/v1/inbound-mail/999/raw"):
        assert admin_client.get(path).status_code == 404
    assert admin_client.post("/api/v1/inbound-mail/999/retry").status_code == 404


def test_admins_see_how_many_mails_are_in_each_status(admin_client: Any, smtp_server: Any):
    assert admin_client.get("/api/v1/inbound-mail/counts").json == {
        "queued": 0,
        "processing": 0,
        "stored": 0,
        "rejected": 0,
        "failed": 0,
    }
    smtp_send(smtp_server.port, customer_mail(body="stored"))
    smtp_send(smtp_server.port, dsn("<unknown@example.org>"), mail_from="")
    fail(smtp_send(smtp_server.port, customer_mail("jan@example.com"), process=False).spool_id or 0)
    smtp_send(smtp_server.port, customer_mail("ola@example.com"), process=False)

    counts = admin_client.get("/api/v1/inbound-mail/counts")
    assert counts.status_code == 200
    assert counts.json == {"queued": 1, "processing": 0, "stored": 1, "rejected": 1, "failed": 1}


def test_admins_hear_live_when_mail_fails_and_when_it_is_retried(
    app: Any, admin_client: Any, smtp_server: Any, events: list[Any], monkeypatch: pytest.MonkeyPatch
):
    from app.events import INBOUND_MAIL_FAILED

    app.config["MAIL_SPOOL_MAX_ATTEMPTS"] = 1

    def parser_bug(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("parser bug")

    with monkeypatch.context() as patch:
        patch.setattr("connectors.email.server.parse_email", parser_bug)
        first = smtp_send(smtp_server.port, customer_mail(body="one"))
        second = smtp_send(smtp_server.port, customer_mail("jan@example.com", body="two"))
    assert (first.status, second.status) == ("failed", "failed")

    def failed_counts() -> list[int]:
        return [event.payload["failed"] for event in events if event.name == INBOUND_MAIL_FAILED]

    assert failed_counts() == [1, 2]
    [event] = [event for event in events if event.name == INBOUND_MAIL_FAILED][:1]
    # For admins' screens only: never the agents' inbox, never a customer.
    assert (event.min_role, event.all_agents, event.private) == ("admin", False, True)

    assert admin_client.post(f"/api/v1/inbound-mail/{first.spool_id}/retry").status_code == 200
    assert failed_counts() == [1, 2, 1]
