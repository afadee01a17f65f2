"""An agent's files in the chat: the visitor sees them live and in the history, and downloads them with their own
token through the widget's file route; nobody else can, and a note's files never reach the widget."""

from __future__ import annotations

import io
from typing import Any

from tests.widget.conftest import Widget

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01\x02" * 200
PDF = b"%PDF-1.4\n%agent reply\n%%EOF\n"


def _start_chat(visitor: Widget) -> int:
    visitor.start()
    visitor.connect()
    ack = visitor.send("Can you send me the invoice?", client_id="ask-invoice-1")
    assert ack["ok"] is True, ack
    visitor.received()
    return int(ack["conversation_id"])


def _reply(agent_client: Any, conversation_id: int, files: list[Any], **fields: Any) -> Any:
    response = agent_client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        data={**fields, "files": files},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.json
    return response.json


def _bearer(visitor: Widget) -> dict[str, str]:
    return {"Authorization": f"Bearer {visitor.token}"}


def test_the_visitor_gets_the_agents_files_live_and_downloads_them_with_their_token(
    widget: Any, agent_client: Any
) -> None:
    anna, bob = widget(), widget()
    conversation_id = _start_chat(anna)
    bob.start()
    bob.connect()

    sent = _reply(
        agent_client,
        conversation_id,
        [(io.BytesIO(PNG), "parcel.png", "image/png"), (io.BytesIO(PDF), "invoice.pdf", "application/pdf")],
        body="Here you are.",
        channel="chat",
    )

    live = [event["args"][0]["message"] for event in anna.received("message.created")]
    assert [message["text"] for message in live] == ["Here you are."]
    files = live[0]["attachments"]
    assert [(f["filename"], f["content_type"]) for f in files] == [
        ("parcel.png", "image/png"),
        ("invoice.pdf", "application/pdf"),
    ]
    assert [f["url"] for f in files] == [f"/api/v1/widget/attachments/{a['id']}" for a in sent["attachments"]]
    assert all(set(f) == {"id", "filename", "content_type", "size", "url"} for f in files)
    history = anna.history().json["items"]
    assert history[-1]["attachments"] == files

    image = anna.http.get(files[0]["url"], headers=_bearer(anna))
    document = anna.http.get(files[1]["url"], headers=_bearer(anna))
    assert (image.status_code, image.data, image.mimetype) == (200, PNG, "image/png")
    assert (document.status_code, document.data) == (200, PDF)
    assert document.mimetype == "application/octet-stream"  # a download, never rendered in the widget
    assert "attachment" in document.headers["Content-Disposition"]
    assert document.headers["X-Content-Type-Options"] == "nosniff"

    # Another visitor, no token, or the console's own link with a visitor token: nothing.
    assert bob.received("message.created") == []
    assert bob.http.get(files[0]["url"], headers=_bearer(bob)).status_code == 404
    assert anna.http.get(files[0]["url"]).status_code == 401
    assert anna.http.get(sent["attachments"][0]["url"], headers=_bearer(anna)).status_code == 401


def test_files_of_a_private_note_never_reach_the_widget(widget: Any, agent_client: Any) -> None:
    anna = widget()
    conversation_id = _start_chat(anna)

    note = _reply(
        agent_client,
        conversation_id,
        [(io.BytesIO(PDF), "internal.pdf", "application/pdf")],
        body="Refund approved, see the form",
        private="true",
    )

    assert anna.received("message.created") == []
    assert all(not item["attachments"] for item in anna.history().json["items"])
    url = f"/api/v1/widget/attachments/{note['attachments'][0]['id']}"
    assert anna.http.get(url, headers=_bearer(anna)).status_code == 404
