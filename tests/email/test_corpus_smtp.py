"""The proof on real mail: every file of ../shared/corpus/mail goes over a real SMTP session to the running
server, is spooled, and the worker turns it into a stored message or a deliberate, logged rejection with a
reason (both recorded on its spool row)."""

from __future__ import annotations

import logging
import re
import smtplib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Attachment, Conversation, Message
from connectors.email.parse import parse_email
from tests.email.conftest import (
    MAILBOX,
    RelaySink,
    SmtpResult,
    corpus_mail_dir,
    drain_spool,
    load_spool,
    release_session,
    smtp_send,
    smtp_transaction,
)
from tests.email.test_threading_round_trip import agent_reply, customer_mail, open_conversation, receive

_RETURN_PATH_RE = re.compile(rb"^Return-Path:[ \t]*<([^>]*)>", re.IGNORECASE | re.MULTILINE)
_FROM_RE = re.compile(rb"^From:.*?([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})", re.IGNORECASE | re.MULTILINE)


def envelope_sender(raw: bytes) -> str:
    """The MAIL FROM a real MTA would have used: Return-Path (empty for bounces), else the From address."""
    head = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    found = _RETURN_PATH_RE.search(head)
    if found:
        return found.group(1).decode("ascii", errors="replace")
    found = _FROM_RE.search(head)
    return found.group(1).decode() if found else "corpus-sender@example.com"


def corpus_files() -> list[Path]:
    files = sorted(corpus_mail_dir().glob("*.eml"))
    assert len(files) == 168, "the corpus MANIFEST lists 168 messages"
    return files


def run_corpus(app: Any, port: int) -> dict[str, SmtpResult]:
    """Send the whole corpus over one SMTP session (as one busy MTA would), let the worker work through the
    spool it filled, and collect the answers with what became of each mail."""
    release_session()
    results = {}
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        for path in corpus_files():
            raw = path.read_bytes()
            results[path.name] = smtp_transaction(client, raw, mail_from=envelope_sender(raw), process=False)
    assert drain_spool(app) == sum(r.code == 250 for r in results.values())  # each spooled mail, once
    for result in results.values():
        if result.spool_id is not None:
            result.spool = load_spool(result.spool_id)
    release_session()
    return results


def stored(result: SmtpResult) -> Message:
    assert result.status == "stored", result
    assert re.fullmatch(r"(already )?stored as message \d+", result.outcome), result
    message = db.session.get(Message, result.message_id)
    assert message is not None
    assert result.outcome.endswith(f" as message {message.id}"), result
    return message


def by_name(results: dict[str, SmtpResult], name: str) -> Message:
    result = results[name]
    assert result.code == 250, (name, result)
    return stored(result)


def test_the_whole_corpus_over_real_smtp(app: Any, smtp_server: Any, caplog: pytest.LogCaptureFixture):
    """One run of all 168 files (a few seconds), then checks by theme; each names the file that fails."""
    caplog.set_level(logging.INFO, logger="connectors.email.server")
    results = run_corpus(app, smtp_server.port)
    logs = [record.getMessage() for record in caplog.records if record.name == "connectors.email.server"]
    # The worker retries what crashes (and logs it as a warning, then an error): nothing may have.
    assert [r.getMessage() for r in caplog.records if r.name.startswith("app.worker") and r.levelno >= 30] == []

    check_every_mail_is_stored_or_deliberately_rejected(results, logs)
    check_subjects_are_decoded(results)
    check_attachments_are_extracted(results)
    check_automatic_mail_is_flagged(results)
    check_replies_are_folded(results)
    check_forwarded_messages_are_unpacked(results)


def check_every_mail_is_stored_or_deliberately_rejected(results: dict[str, SmtpResult], logs: list[str]) -> None:
    # The server spooled every mail (a 4xx/5xx here is a refusal or a failure to spool)…
    refused = {name: (r.code, r.reply) for name, r in results.items() if r.code != 250}
    assert refused == {}
    # …and the worker handled each in one go: no crash left any queued, failed or retried.
    unfinished = {name: (r.status, r.attempts, r.outcome) for name, r in results.items() if r.attempts != 1}
    assert unfinished == {}
    assert {name: r.status for name, r in results.items() if r.status not in ("stored", "rejected")} == {}
    accepted = {name: r for name, r in results.items() if r.status == "stored"}
    rejected = {name: r for name, r in results.items() if r.status == "rejected"}

    # No rejection other than the deliberate one, each with its reason and no message.
    reasons = {r.outcome for r in rejected.values()}
    assert reasons == {"delivery report does not match any message sent from here"}
    assert all(r.message_id is None for r in rejected.values())
    # The rejections are exactly the delivery reports for mail this helpdesk never sent…
    for name in rejected:
        raw = (corpus_mail_dir() / name).read_bytes()
        assert parse_email(raw, envelope_sender=envelope_sender(raw)).bounce is not None, name
    # …and each is in the log with its reason.
    logged = [line for line in logs if line.startswith("rejected a delivery report")]
    assert len(logged) == len(rejected)
    # Everything else is a stored message (the same mail twice, e.g. the CRLF and LF copies, is stored once).
    for name, result in accepted.items():
        message = stored(result)
        assert message.direction == "in", name
        assert message.channel == "email", name
        assert message.raw_path, name
    assert (len(accepted), len(rejected)) == (138, 30)
    assert len({stored(r).id for r in accepted.values()}) == db.session.query(Message).count()


def check_subjects_are_decoded(results: dict[str, Any]) -> None:
    subjects = {
        "mikel-mail__multi_charset__japanese.eml": "まみむめも",
        "mikel-mail__multi_charset__japanese_iso_2022.eml": "まみむめも",
        "mikel-mail__plain_emails__raw_email.eml": "NOTE: 한국말로 하는 것",
        "mikel-mail__attachment_emails__attachment_pdf.eml": "Another PDF with 🎉 Unicode chars in it 🍿",
        "mikel-mail__attachment_emails__attachment_with_quoted_filename.eml": "Eelanalüüsi päring",
        "mikel-mail__error_emails__invalid_subject_characters.eml": (
            "Formação FrenetikPolis: Mega Campanha Final Verão | Cursos de Setembro"
        ),
        "mikel-mail__error_emails__bad_encoded_subject.eml": "TEST",
        "mikel-mail__rfc2822__example14.eml": "Re: TEST  テストテスト",
        "spamscope__mail_test_1.eml": "письмо уведом-е",  # noqa: RUF001
        "spamscope__mail_test_12.eml": "代开各地增值税发票",
        "spamscope__mail_test_5.eml": "Je prépare mon été zéro complexe !",
        "spamscope__mail_test_17.eml": "Transferencia Interbancaria Banca en Línea",
    }
    for name, subject in subjects.items():
        assert by_name(results, name).subject == subject, name


def check_attachments_are_extracted(results: dict[str, Any]) -> None:
    expected = {
        "spamscope__mail_test_2.eml": [("intestazione.jpg", True), ("logometeo.jpg", True), ("Bollettino.pdf", False)],
        "mikel-mail__mime_emails__raw_email7.eml": [("test.rb", False), ("test.pdf", False), ("smime.p7s", False)],
        "mikel-mail__multi_charset__japanese_attachment.eml": [("てすと.txt", False)],
        "mikel-mail__attachment_emails__attachment_with_unquoted_name.eml": [("This is a test.txt", False)],
        "mikel-mail__attachment_emails__attachment_with_quoted_filename.eml": [("Eelanalüüsi päring.jpg", False)],
        "mikel-mail__mime_emails__raw_email_with_binary_encoded.eml": [("2013-08-13_19-08-28-1.jpg", False)],
        "spamscope__mail_test_1.eml": [("ФНС_РФ558.zip", False)],  # noqa: RUF001
    }
    for name, attachments in expected.items():
        message = by_name(results, name)
        rows = db.session.scalars(select(Attachment).where(Attachment.message_id == message.id).order_by(Attachment.id))
        assert [(a.filename, a.inline) for a in rows] == attachments, name
    # Inline images of the weather bulletin point at the served copies.
    bulletin = by_name(results, "spamscope__mail_test_2.eml")
    for attachment in bulletin.attachments:
        if attachment.inline:
            assert f"/api/v1/email/inline/{attachment.sha256}" in (bulletin.html or "")


def check_automatic_mail_is_flagged(results: dict[str, Any]) -> None:
    for name, reason in {
        "sisimai__bsd__rfc3834-01.eml": "Auto-Submitted",
        "sisimai__bsd__rfc3834-03.eml": "auto-reply subject",
        "spamscope__mail_test_16.eml": "Precedence: junk",
        "sisimai__bsd__arf-02.eml": "report: feedback-report",
        "mikel-mail__error_emails__encoding_madness.eml": "sent from a machine address",
    }.items():
        message = by_name(results, name)
        assert message.automated is True, name
        assert message.meta["email"]["automated_reason"].startswith(reason), name
    assert by_name(results, "talon__standard_replies__gmail.eml").automated is False


def check_replies_are_folded(results: dict[str, Any]) -> None:
    gmail = by_name(results, "talon__standard_replies__gmail.eml")
    assert gmail.meta["email"]["visible_text"] == "Hello"
    assert "wrote:" in gmail.text  # the full text is kept
    assert by_name(results, "talon__standard_replies__outlook.eml").meta["email"]["visible_text"] == "Hello"


def check_forwarded_messages_are_unpacked(results: dict[str, Any]) -> None:
    message = by_name(results, "mikel-mail__attachment_emails__attachment_message_rfc822.eml")

    assert "Just attaching another PDF" in message.text
    assert [a.filename for a in message.attachments] == ["ForwardedMessage.eml", "broken.pdf"]


def test_a_corpus_reply_threads_into_its_authors_conversation_and_not_into_a_strangers(smtp_server: Any):
    folder = corpus_mail_dir()
    hello = receive(
        smtp_server, (folder / "mikel-mail__rfc2822__example05.eml").read_bytes(), mail_from="jdoe@machine.example"
    )
    newer = open_conversation(hello.customer_id)  # routing alone would now pick this one

    # Mary answers John's mail: she may not join his conversation.
    mary = receive(
        smtp_server, (folder / "mikel-mail__rfc2822__example06.eml").read_bytes(), mail_from="mary@example.net"
    )
    # John answers Mary, referencing his own first mail: it threads into his first conversation.
    john = receive(
        smtp_server, (folder / "mikel-mail__rfc2822__example07.eml").read_bytes(), mail_from="jdoe@machine.example"
    )

    assert mary.conversation_id not in (hello.conversation_id, newer)
    assert john.conversation_id == hello.conversation_id


@pytest.mark.parametrize("name", ["sisimai__bsd__lhost-postfix-03.eml", "sisimai__bsd__lhost-qmail-01.eml"])
def test_a_corpus_bounce_is_matched_to_the_mail_it_bounces(app: Any, smtp_server: Any, relay: RelaySink, name: str):
    first = receive(smtp_server, customer_mail(sender="kijitora@example.net"), mail_from="kijitora@example.net")
    sent, _ = agent_reply(app, relay, first.conversation_id, "Thanks, noted.")
    raw = (corpus_mail_dir() / name).read_bytes()
    original = re.search(
        rb"^Message-ID:\s*(<[^>]+>)",
        raw.split(b"Below this line")[-1].split(b"message/rfc822")[-1],
        re.IGNORECASE | re.MULTILINE,
    )
    assert original is not None
    bounce = raw.replace(original.group(1), (sent.message_id_header or "").encode())
    conversations = db.session.query(Conversation).count()

    result = smtp_send(smtp_server.port, bounce, mail_from="")

    assert result.code == 250, result
    assert (result.status, result.outcome) == ("stored", f"delivery report recorded for message {sent.id}")
    release_session()
    failed = db.session.get_one(Message, sent.id)
    assert failed.delivery_status == "failed"
    assert "550 Unknown user" in (failed.error or "")
    assert db.session.query(Conversation).count() == conversations
    assert db.session.query(Message).count() == 2  # the customer's mail and our reply; the bounce is no message
    assert MAILBOX  # the bounce came to the mailbox address like any other mail
