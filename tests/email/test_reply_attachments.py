"""An agent's files leave with the reply: through the API and the outbox to a real SMTP relay, as MIME parts."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from app.extensions import db
from app.models import Attachment, Message
from tests.email.conftest import RelaySink, deliver_outbox, release_session
from tests.email.test_threading_round_trip import customer_mail, receive

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\xff" * 300


def _reply_with_files(agent_client: Any, conversation_id: int, files: list[Any], **fields: Any) -> Any:
    release_session()
    response = agent_client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        data={**fields, "files": files},
        content_type="multipart/form-data",
    )
    release_session()
    return response


def test_the_mail_the_relay_receives_carries_the_agents_files(
    app: Any, smtp_server: Any, relay: RelaySink, agent_client: Any
) -> None:
    first = receive(smtp_server, customer_mail(subject="Invoice please"))

    response = _reply_with_files(
        agent_client,
        first.conversation_id,
        [
            (io.BytesIO(PDF), "faktura-żółć 12.pdf", "application/pdf"),
            (io.BytesIO(PNG), "label.png", "image/png"),
            (io.BytesIO("Zażółć gęślą jaźń\n".encode()), "notes.txt", "text/plain"),
        ],
        body="Here is your invoice and the label.",
        channel="email",
    )
    assert response.status_code == 201, response.json
    assert deliver_outbox(app) == 1

    sent = db.session.get_one(Message, response.json["id"])
    assert sent.delivery_status == "sent", sent.error
    mail = relay.received[-1].message
    assert relay.received[-1].rcpt_tos == ["anna@example.com"]
    text = mail.get_body(("plain",))
    assert text is not None
    assert "Here is your invoice and the label." in text.get_content()
    parts = list(mail.iter_attachments())
    assert [(part.get_filename(), part.get_content_type(), part.get_content_disposition()) for part in parts] == [
        ("faktura-żółć 12.pdf", "application/pdf", "attachment"),
        ("label.png", "image/png", "attachment"),
        ("notes.txt", "text/plain", "attachment"),
    ]
    assert parts[0].get_payload(decode=True) == PDF
    assert parts[1].get_payload(decode=True) == PNG
    assert parts[2].get_payload(decode=True) == "Zażółć gęślą jaźń\n".encode()
    assert mail["Message-ID"] == sent.message_id_header


def test_a_reply_whose_file_is_gone_from_the_store_fails_with_the_reason(
    app: Any, smtp_server: Any, relay: RelaySink, agent_client: Any
) -> None:
    from app.services import attachments as files

    first = receive(smtp_server, customer_mail())
    response = _reply_with_files(
        agent_client,
        first.conversation_id,
        [(io.BytesIO(PDF), "contract.pdf", "application/pdf")],
        body="Contract attached.",
        channel="email",
    )
    assert response.status_code == 201, response.json
    stored = db.session.get_one(Attachment, response.json["attachments"][0]["id"])
    Path(files.path_for(stored.sha256)).unlink()
    release_session()

    deliver_outbox(app)

    sent = db.session.get_one(Message, response.json["id"])
    assert sent.delivery_status == "failed"
    assert "contract.pdf" in (sent.error or "")
    assert relay.received == []


def test_composite_or_malformed_types_are_attached_as_octet_stream() -> None:
    """message/* and multipart/* may not be base64-encoded (RFC 2046); parameters and junk are dropped."""
    from connectors.base import Attachment as File
    from connectors.email.compose import attachment_type, build_message
    from tests.email.test_outbound import outbound

    assert attachment_type("message/rfc822") == ("application", "octet-stream")
    assert attachment_type("multipart/mixed") == ("application", "octet-stream")
    assert attachment_type("Text/CSV; charset=windows-1250") == ("text", "csv")
    assert attachment_type("not a type") == ("application", "octet-stream")
    assert attachment_type(None) == ("application", "octet-stream")
    forwarded = File(filename="original.eml", content_type="message/rfc822", data=b"From: a@b\r\n\r\nhi\r\n")
    mail = build_message(outbound(attachments=[forwarded]), domain="support.example.com")
    (part,) = mail.iter_attachments()
    assert (part.get_content_type(), part.get_filename()) == ("application/octet-stream", "original.eml")
    assert part.get_payload(decode=True) == forwarded.data
