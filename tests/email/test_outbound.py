"""Outbound mail: the MIME we build for a reply, and sending it through a real SMTP relay."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from connectors.base import Attachment, Identity, OutboundMessage, PermanentSendError, RetryableSendError, ThreadHints
from connectors.email.compose import build_message, plus_address, reply_subject
from connectors.email.relay import EmailConnector, RelayConfig, send_mail
from connectors.email.server import FreePortController
from tests.conftest import free_port
from tests.email.conftest import RelaySink


def outbound(**overrides: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "message_id": 7,
        "channel": "email",
        "channel_address": "support@support.example.com",
        "recipient": Identity("email", "anna@example.com"),
        "recipient_name": "Anna Nowak-Żółć",
        "text": "Your parcel is on its way.\n\nAcme",
        "subject": "Where is my parcel?",
        "thread": ThreadHints(
            message_id="<out-7@support.example.com>",
            in_reply_to="<cust-2@example.com>",
            references=["<cust-1@example.com>", "<out-3@support.example.com>"],
            reply_token="c5-abcdefgh",
            conversation_number=5,
        ),
        "settings": {"from_name": "Acme Support"},
    }
    fields.update(overrides)
    return OutboundMessage(**fields)


def test_a_reply_continues_the_thread_and_asks_for_answers_at_the_reply_token_address():
    mail = build_message(outbound(), domain="support.example.com")

    assert mail["Message-ID"] == "<out-7@support.example.com>"
    assert mail["In-Reply-To"] == "<cust-2@example.com>"
    assert mail["References"] == "<cust-1@example.com> <out-3@support.example.com> <cust-2@example.com>"
    assert mail["Reply-To"].addresses[0].addr_spec == "support+c5-abcdefgh@support.example.com"
    assert mail["From"].addresses[0].display_name == "Acme Support"
    assert mail["To"].addresses[0].display_name == "Anna Nowak-Żółć"
    assert mail["To"].addresses[0].addr_spec == "anna@example.com"
    assert mail["Subject"] == "Re: Where is my parcel? [#5]"
    assert mail["Date"] is not None
    assert mail["Auto-Submitted"] is None


def test_a_reply_has_text_and_html_parts_and_carries_attachments():
    pdf = Attachment(filename="faktura-żółć.pdf", content_type="application/pdf", data=b"%PDF-1.4 test")
    mail = build_message(outbound(attachments=[pdf]), domain="support.example.com")

    body = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert body is not None
    assert body.get_content().strip() == "Your parcel is on its way.\n\nAcme"
    assert html is not None
    assert "<p>Your parcel is on its way.</p>" in html.get_content()
    attachments = list(mail.iter_attachments())
    assert [part.get_filename() for part in attachments] == ["faktura-żółć.pdf"]
    assert attachments[0].get_content() == b"%PDF-1.4 test"
    # Headers survive the trip through bytes (7-bit, encoded words where needed).
    assert mail.as_bytes().isascii()


def test_automatic_messages_say_so_so_other_responders_do_not_answer():
    mail = build_message(outbound(automated=True), domain="support.example.com")

    assert mail["Auto-Submitted"] == "auto-replied"


def test_a_first_message_without_thread_gets_our_own_message_id():
    mail = build_message(outbound(thread=ThreadHints()), domain="support.example.com")

    assert mail["Message-ID"].endswith("@support.example.com>")
    assert mail["In-Reply-To"] is None
    assert mail["References"] is None
    assert mail["Reply-To"] is None
    assert mail["Subject"] == "Where is my parcel?"


def test_subject_and_plus_address_helpers():
    assert reply_subject("Re: Parcel [#5]", 5, is_reply=True) == "Re: Parcel [#5]"
    assert reply_subject("Odp: Paczka", 9, is_reply=True) == "Odp: Paczka [#9]"
    assert reply_subject("Line\r\nbreak", None, is_reply=False) == "Line break"
    assert plus_address("support+old@example.com", "c1-x") == "support+c1-x@example.com"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://relay.example.com", RelayConfig("relay.example.com", 25)),
        (
            "smtp://user%40x:p%3Ass@relay.example.com:587?starttls=always&timeout=5",
            RelayConfig("relay.example.com", 587, False, "always", "user@x", "p:ss", 5.0),
        ),
        ("smtps://relay.example.com", RelayConfig("relay.example.com", 465, True, "never")),
    ],
)
def test_relay_urls(url: str, expected: RelayConfig):
    assert RelayConfig.from_url(url) == expected


@pytest.mark.parametrize("url", ["http://relay", "smtp://", "smtp://h?starttls=maybe"])
def test_bad_relay_urls_are_refused(url: str):
    with pytest.raises(ValueError):
        RelayConfig.from_url(url)


@pytest.fixture
def sink() -> Iterator[RelaySink]:
    recorder = RelaySink()
    controller = FreePortController(recorder, hostname="127.0.0.1", port=0)
    controller.start()
    recorder.port = controller.port
    yield recorder
    controller.stop()


def test_the_connector_hands_the_mail_to_the_relay_and_returns_its_message_id(sink: RelaySink):
    connector = EmailConnector({"SMTP_RELAY_URL": sink.url, "MAIL_DOMAIN": "support.example.com"})

    provider_id = connector.send(outbound())

    assert provider_id == "<out-7@support.example.com>"
    [received] = sink.received
    assert received.mail_from == "support@support.example.com"
    assert received.rcpt_tos == ["anna@example.com"]
    assert received.message["Message-ID"] == "<out-7@support.example.com>"


def test_a_4xx_reply_is_retried_later(sink: RelaySink):
    sink.replies.append("451 4.7.1 Greylisted, try again")
    with pytest.raises(RetryableSendError, match=r"451 4\.7\.1 Greylisted"):
        EmailConnector({"SMTP_RELAY_URL": sink.url}).send(outbound())


def test_a_5xx_reply_fails_the_message_with_the_relays_reason(sink: RelaySink):
    sink.replies.append("554 5.7.1 Message rejected as spam")
    with pytest.raises(PermanentSendError, match=r"554 5\.7\.1 Message rejected as spam"):
        EmailConnector({"SMTP_RELAY_URL": sink.url}).send(outbound())


def test_an_unreachable_relay_is_retried_later():
    with pytest.raises(RetryableSendError, match="cannot reach relay"):
        EmailConnector({"SMTP_RELAY_URL": f"smtp://127.0.0.1:{free_port()}?timeout=5"}).send(outbound())


def test_a_password_is_never_sent_to_a_remote_relay_without_tls():
    config = RelayConfig("relay.invalid", 25, username="u", password="p")
    assert not config.loopback


# --------------------------------------------------------------------------- STARTTLS and authentication


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command line."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not found; it creates the test relay's certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


class Accounts:
    def __init__(self) -> None:
        self.logins: list[tuple[str, bool]] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.logins.append((auth_data.login.decode(), session.ssl is not None))
        return AuthResult(success=auth_data.login == b"agent" and auth_data.password == b"s3cret", handled=False)


@pytest.fixture
def tls_sink(certificate: tuple[Path, Path]) -> Iterator[tuple[RelaySink, Accounts]]:
    key, cert = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    recorder, accounts = RelaySink(), Accounts()
    controller = FreePortController(
        recorder, hostname="127.0.0.1", port=0, tls_context=context, authenticator=accounts, auth_require_tls=True
    )
    controller.start()
    recorder.port = controller.port
    yield recorder, accounts
    controller.stop()


def test_starttls_then_login_then_send(tls_sink: tuple[RelaySink, Accounts], certificate: tuple[Path, Path]):
    sink, accounts = tls_sink
    _, cert = certificate
    url = f"smtp://agent:s3cret@127.0.0.1:{sink.port}?starttls=always&cafile={cert}"

    EmailConnector({"SMTP_RELAY_URL": url}).send(outbound())

    assert accounts.logins == [("agent", True)]  # the password travelled encrypted
    assert len(sink.received) == 1


def test_wrong_relay_credentials_keep_the_message_queued(
    tls_sink: tuple[RelaySink, Accounts], certificate: tuple[Path, Path]
):
    sink, _ = tls_sink
    _, cert = certificate
    url = f"smtp://agent:wrong@127.0.0.1:{sink.port}?cafile={cert}"

    with pytest.raises(RetryableSendError, match="relay refused our login"):
        EmailConnector({"SMTP_RELAY_URL": url}).send(outbound())
    assert sink.received == []


def test_an_untrusted_relay_certificate_is_refused(tls_sink: tuple[RelaySink, Accounts]):
    sink, _ = tls_sink
    with pytest.raises(RetryableSendError):
        send_mail(
            RelayConfig.from_url(f"smtp://127.0.0.1:{sink.port}?starttls=always"),
            build_message(outbound(), domain="x.example.com"),
            "support@support.example.com",
            ["anna@example.com"],
        )
    assert sink.received == []


def test_smtps_relays_get_the_mail_over_implicit_tls(certificate: tuple[Path, Path]):
    key, cert = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    recorder = RelaySink()
    controller = FreePortController(recorder, hostname="127.0.0.1", port=0, ssl_context=context)
    controller.start()
    try:
        url = f"smtps://127.0.0.1:{controller.port}?cafile={cert}"
        assert EmailConnector({"SMTP_RELAY_URL": url}).send(outbound()) == "<out-7@support.example.com>"
    finally:
        controller.stop()
    assert len(recorder.received) == 1
