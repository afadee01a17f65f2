"""Files with a reply or note: multipart/form-data on the reply endpoint, its limits, and nothing stored on refusal."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2
MAILBOX = "support@support.example.com"


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """Small limits, so the tests can go over them with small files."""
    app_config.update(
        REPLY_ATTACHMENTS_MAX_FILES=3,
        REPLY_ATTACHMENT_MAX_BYTES=4096,
        REPLY_ATTACHMENTS_MAX_TOTAL_BYTES=6000,
    )
    return app_config


@pytest.fixture
def mailbox(app: Any) -> Any:
    from app.services.channels import create_channel

    channel, _ = create_channel("email", "Support", address=MAILBOX)
    return channel


def _file(data: bytes, name: str, content_type: str = "") -> tuple[io.BytesIO, str, str]:
    return (io.BytesIO(data), name, content_type)


def _post(client: Any, conversation_id: int, files: list[Any], **fields: Any) -> Any:
    return client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        data={**fields, "files": files},
        content_type="multipart/form-data",
    )


def _stored_files(app: Any) -> list[Path]:
    root = Path(app.config["ATTACHMENTS_DIR"])
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def _counts(session: Any) -> tuple[int, int, int]:
    from app.models import Attachment, Message

    session.rollback()
    return (
        session.scalar(select(func.count(Message.id))),
        session.scalar(select(func.count(Message.id)).where(Message.delivery_status == "queued")),
        session.scalar(select(func.count(Attachment.id))),
    )


def test_a_multipart_reply_stores_its_files_with_the_message(app, conversation, mailbox, agent_client, session):
    from app.models import Attachment, Message
    from app.services import attachments as files

    conversation_id = conversation["conversation"]["id"]

    response = _post(
        agent_client,
        conversation_id,
        [_file(PDF, "faktura-żółć.pdf", "application/pdf"), _file(b"Order 42\n", "../../notes.txt")],
        body="Your invoice is attached.",
        channel="email",
    )

    assert response.status_code == 201, response.json
    data = response.json
    assert (data["channel"], data["delivery_status"], data["text"]) == ("email", "queued", "Your invoice is attached.")
    assert [(a["filename"], a["content_type"], a["size"]) for a in data["attachments"]] == [
        ("faktura-żółć.pdf", "application/pdf", len(PDF)),
        ("notes.txt", "text/plain", 9),
    ]
    session.rollback()
    rows = session.scalars(select(Attachment).order_by(Attachment.id)).all()
    assert [row.message_id for row in rows] == [data["id"], data["id"]]
    assert files.read_bytes(rows[0].sha256) == PDF
    assert session.get(Message, data["id"]).attachments == rows
    download = agent_client.get(data["attachments"][0]["url"])
    assert download.status_code == 200
    assert download.data == PDF
    listed = agent_client.get(f"/api/v1/conversations/{conversation_id}/messages").json["items"]
    assert [a["filename"] for a in listed[-1]["attachments"]] == ["faktura-żółć.pdf", "notes.txt"]


def test_the_type_comes_from_the_bytes_and_a_file_alone_is_a_reply(conversation, agent_client):
    """A PNG sent as application/octet-stream is a PNG; with a file the text may be empty."""
    response = _post(
        agent_client,
        conversation["conversation"]["id"],
        [_file(PNG, "screenshot.png", "application/octet-stream")],
        channel="api",
    )

    assert response.status_code == 201, response.json
    assert response.json["text"] == ""
    assert response.json["attachments"][0]["content_type"] == "image/png"


def test_a_private_note_may_carry_files_and_stays_internal(conversation, agent_client, events):
    from app.events import MESSAGE_CREATED

    response = _post(
        agent_client,
        conversation["conversation"]["id"],
        [_file(PDF, "contract.pdf", "application/pdf")],
        body="Signed copy for the file",
        private="true",
    )

    assert response.status_code == 201, response.json
    assert (response.json["kind"], response.json["delivery_status"]) == ("note", "not_sent")
    assert response.json["attachments"][0]["filename"] == "contract.pdf"
    created = [event for event in events if event.name == MESSAGE_CREATED]
    assert [event.private for event in created] == [True]


def test_json_replies_work_as_before(conversation, agent_client):
    url = f"/api/v1/conversations/{conversation['conversation']['id']}/messages"

    response = agent_client.post(url, json={"body": "Plain text", "channel": "api"})
    empty = agent_client.post(url, json={"body": "  ", "channel": "api"})

    assert response.status_code == 201
    assert response.json["attachments"] == []
    assert empty.status_code == 422
    assert "body" in empty.json["error"]["fields"]


@pytest.mark.parametrize(
    ("files", "status", "code"),
    [
        pytest.param(
            [_file(b"x" * 10, f"f{n}.txt", "text/plain") for n in range(4)], 422, "too_many_files", id="count"
        ),
        pytest.param([_file(PDF + b"0" * 4096, "big.pdf", "application/pdf")], 413, "too_large", id="one-too-large"),
        pytest.param(
            [_file(PDF + b"0" * 3000, f"part{n}.pdf", "application/pdf") for n in range(2)],
            413,
            "too_large",
            id="total-too-large",
        ),
        pytest.param([_file(b"x" * (1024 * 1024 + 7000), "huge.txt", "text/plain")], 413, "too_large", id="request"),
        pytest.param(
            [_file(b"<script>alert(1)</script>", "page.html", "text/html")], 422, "unsupported_type", id="html"
        ),
        pytest.param(
            [_file(b"MZ\x90\x00 not a pdf", "invoice.pdf", "application/pdf")], 422, "unsupported_type", id="fake"
        ),
        pytest.param([_file(b"", "empty.txt", "text/plain")], 422, "empty_file", id="empty"),
    ],
)
def test_files_over_the_limits_are_refused_and_nothing_is_stored(
    app, conversation, mailbox, agent_client, session, files, status, code
):
    before = _counts(session)
    stored_before = _stored_files(app)
    good = _file(PDF, "fine.pdf", "application/pdf")

    response = _post(
        agent_client, conversation["conversation"]["id"], [good, *files], body="see attached", channel="email"
    )

    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    assert response.json["error"]["message"]
    assert _counts(session) == before
    assert _stored_files(app) == stored_before


def test_files_in_another_field_are_refused(conversation, agent_client, session):
    before = _counts(session)

    response = agent_client.post(
        f"/api/v1/conversations/{conversation['conversation']['id']}/messages",
        data={"body": "hi", "channel": "api", "file": _file(PDF, "a.pdf", "application/pdf")},
        content_type="multipart/form-data",
    )

    assert response.status_code == 422
    assert "file" in response.json["error"]["fields"]
    assert _counts(session) == before


def test_files_cannot_go_by_sms_and_nothing_is_queued_or_stored(app, agent_client, session):
    from app.services.channels import create_channel
    from app.services.ingest import ingest
    from connectors.base import Identity, InboundMessage

    channel, _ = create_channel("sms", "Texts", address="+48221234567")
    text = InboundMessage(
        channel="sms", sender=Identity.parse("phone", "+48601234567"), text="Where is my parcel?", provider_id="SM1"
    )
    conversation_id = ingest(text, channel).conversation.id
    before = _counts(session)

    refused = _post(
        agent_client, conversation_id, [_file(PDF, "label.pdf", "application/pdf")], body="Label", channel="sms"
    )
    by_default = _post(agent_client, conversation_id, [_file(PDF, "label.pdf", "application/pdf")], body="Label")

    for response in (refused, by_default):
        assert response.status_code == 422, response.json
        assert response.json["error"]["code"] == "attachments_not_supported"
        assert "email" in response.json["error"]["message"]
        assert "files" in response.json["error"]["fields"]
    assert _counts(session) == before
    assert _stored_files(app) == []
    # The same text without the file goes by SMS.
    plain = _post(agent_client, conversation_id, [], body="Label", channel="sms")
    assert plain.status_code == 201, plain.json
    assert (plain.json["channel"], plain.json["delivery_status"]) == ("sms", "queued")


def test_only_a_logged_in_agent_with_the_csrf_header_can_attach(app, conversation, anon_client, agent_client, session):
    conversation_id = conversation["conversation"]["id"]
    before = _counts(session)

    anonymous = _post(anon_client, conversation_id, [_file(PDF, "a.pdf", "application/pdf")], body="hi", channel="api")
    forged = agent_client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        data={"body": "hi", "channel": "api", "files": [_file(PDF, "a.pdf", "application/pdf")]},
        content_type="multipart/form-data",
        headers={"X-CSRF-Token": "guess"},
    )

    assert anonymous.status_code == 401
    assert forged.status_code == 403
    assert _counts(session) == before
    assert _stored_files(app) == []


def test_the_conversation_tells_the_console_the_limits_and_the_api_document_says_multipart(
    conversation, agent_client, anon_client
):
    detail = agent_client.get(f"/api/v1/conversations/{conversation['conversation']['id']}").json

    assert detail["reply_attachments"] == {
        "channels": ["email", "chat", "api"],
        "max_files": 3,
        "max_file_bytes": 4096,
        "max_total_bytes": 6000,
    }
    paths = anon_client.get("/api/v1/openapi.json").json["paths"]
    summary = paths["/api/v1/conversations/{conversation_id}/messages"]["post"]["summary"]
    assert "multipart/form-data" in summary
    assert "files" in summary


def test_a_reply_with_files_may_be_larger_than_other_requests(app, conversation, agent_client):
    """MAX_REQUEST_BYTES bounds every other request; the reply endpoint allows what its file limits allow."""
    app.config["MAX_CONTENT_LENGTH"] = 5000
    conversation_id = conversation["conversation"]["id"]
    parts = [_file(PDF + b"0" * (2800 - len(PDF)), f"scan{n}.pdf", "application/pdf") for n in range(2)]

    with_files = _post(agent_client, conversation_id, parts, body="Both scans", channel="api")
    large_json = agent_client.post(
        f"/api/v1/conversations/{conversation_id}/messages", json={"body": "x" * 6000, "channel": "api"}
    )

    assert with_files.status_code == 201, with_files.json
    assert [a["size"] for a in with_files.json["attachments"]] == [2800, 2800]
    assert large_json.status_code == 413
