"""The email endpoints agents use: raw source download, inline images, the bounce report of a sent mail."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.models import Attachment, Message
from tests.email.conftest import RelaySink, fixture_bytes, release_session, smtp_send
from tests.email.test_loopguard_and_bounces import dsn
from tests.email.test_threading_round_trip import agent_reply, customer_mail, receive


def test_agents_download_the_raw_source_of_an_email(smtp_server: Any, agent_client: Any):
    raw = fixture_bytes("polish_reply.eml")
    assert smtp_send(smtp_server.port, raw, mail_from="pawel@example.pl").status == "stored"
    release_session()
    message = db.session.scalars(select(Message)).one()

    response = agent_client.get(f"/api/v1/messages/{message.id}/raw")

    assert response.status_code == 200
    assert response.data == raw
    assert response.mimetype == "message/rfc822"
    assert f"message-{message.id}.eml" in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_inline_images_are_served_with_their_type_and_safe_headers(smtp_server: Any, agent_client: Any):
    assert (
        smtp_send(smtp_server.port, fixture_bytes("html_inline_image.eml"), mail_from="ola@example.com").status
        == "stored"
    )
    release_session()
    logo = db.session.scalars(select(Attachment).where(Attachment.filename == "logo.png")).one()
    message = db.session.get_one(Message, logo.message_id)
    url = f"/api/v1/email/inline/{logo.sha256}"
    assert url in (message.html or "")

    response = agent_client.get(url)

    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.data.startswith(b"\x89PNG")
    assert "sandbox" in response.headers["Content-Security-Policy"]


def test_unknown_files_are_404_and_anonymous_visitors_get_nothing(
    smtp_server: Any, agent_client: Any, anon_client: Any
):
    assert (
        smtp_send(smtp_server.port, fixture_bytes("html_inline_image.eml"), mail_from="ola@example.com").status
        == "stored"
    )
    release_session()
    message = db.session.scalars(select(Message)).one()
    logo = db.session.scalars(select(Attachment).where(Attachment.filename == "logo.png")).one()

    assert agent_client.get(f"/api/v1/email/inline/{'0' * 64}").status_code == 404
    assert agent_client.get("/api/v1/email/inline/../../secret_key").status_code == 404
    assert agent_client.get(f"/api/v1/messages/{message.id + 99}/raw").status_code == 404
    assert anon_client.get(f"/api/v1/messages/{message.id}/raw").status_code == 401
    assert anon_client.get(f"/api/v1/email/inline/{logo.sha256}").status_code == 401


def test_the_bounce_report_of_a_failed_reply_can_be_downloaded(
    app: Any, smtp_server: Any, relay: RelaySink, agent_client: Any
):
    first = receive(smtp_server, customer_mail())
    sent, _ = agent_reply(app, relay, first.conversation_id, "It ships tomorrow.")
    report = dsn(sent.message_id_header or "")
    assert smtp_send(smtp_server.port, report, mail_from="").status == "stored"

    response = agent_client.get(f"/api/v1/messages/{sent.id}/bounce")

    assert response.status_code == 200
    assert response.data.replace(b"\r\n", b"\n") == report.replace(b"\r\n", b"\n")
    assert agent_client.get(f"/api/v1/messages/{first.id}/bounce").status_code == 404


def test_attachments_download_and_images_show_inline(smtp_server: Any, agent_client: Any, anon_client: Any):
    assert (
        smtp_send(smtp_server.port, fixture_bytes("html_inline_image.eml"), mail_from="ola@example.com").status
        == "stored"
    )
    release_session()
    by_name = {a.filename: a for a in db.session.scalars(select(Attachment))}
    message = db.session.get_one(Message, by_name["logo.png"].message_id)
    listed = {
        item["filename"]: item["url"]
        for item in agent_client.get(f"/api/v1/conversations/{message.conversation_id}/messages").json["items"][0][
            "attachments"
        ]
    }

    pdf = agent_client.get(listed["faktura-żółć.pdf"])
    logo = agent_client.get(listed["logo.png"])

    assert pdf.status_code == 200
    assert pdf.data.startswith(b"%PDF-1.4")
    assert pdf.mimetype == "application/octet-stream"
    assert pdf.headers["Content-Disposition"].startswith("attachment;")
    assert logo.mimetype == "image/png"
    assert "attachment" not in logo.headers.get("Content-Disposition", "")
    assert anon_client.get(listed["logo.png"]).status_code == 401
