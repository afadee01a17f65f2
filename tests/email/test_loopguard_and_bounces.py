"""The loop guard (mail no human wrote) and delivery reports (bounces of mail we sent)."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from connectors.email.loopguard import automated_reason, is_machine_address
from connectors.email.parse import parse_email
from tests.email.conftest import corpus_mail_dir, crlf


def mail(headers: str, body: str = "Hello") -> object:
    return message_from_bytes(crlf(f"{headers}\nSubject: hi\n\n{body}\n".encode()), policy=policy.default)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Auto-Submitted: auto-replied", "Auto-Submitted"),
        ("Auto-Submitted: auto-generated (failure)", "Auto-Submitted"),
        ("Precedence: bulk", "Precedence: bulk"),
        ("Precedence: list", "Precedence: list"),
        ("Precedence: junk", "Precedence: junk"),
        ("X-Loop: helpdesk@example.com", "X-Loop"),
        ("X-Autoreply: yes", "X-Autoreply"),
        ("X-Auto-Response-Suppress: All", "X-Auto-Response-Suppress"),
    ],
)
def test_automatic_mail_headers_are_recognised(header: str, reason: str):
    found = automated_reason(mail(f"From: a@example.com\n{header}"), sender="a@example.com")  # type: ignore[arg-type]

    assert found is not None
    assert found.startswith(reason)


@pytest.mark.parametrize(
    "sender",
    [
        "MAILER-DAEMON@mx.example.com",
        "postmaster@example.com",
        "noreply@shop.example.com",
        "no-reply@example.com",
        "do-not-reply@example.com",
        "noreply+bounces@example.com",
    ],
)
def test_machine_sender_addresses_are_recognised(sender: str):
    assert is_machine_address(sender)
    assert automated_reason(mail(f"From: {sender}"), sender=sender) is not None  # type: ignore[arg-type]


def test_a_person_writing_normally_is_not_flagged():
    message = mail("From: Anna <anna@example.com>\nAuto-Submitted: no\nPrecedence: first-class")
    assert automated_reason(message, sender="anna@example.com", envelope_sender="anna@example.com") is None  # type: ignore[arg-type]
    assert not is_machine_address("noreen@example.com")


def test_null_envelope_sender_and_our_own_address_are_flagged():
    message = mail("From: anna@example.com")
    assert automated_reason(message, sender="anna@example.com", envelope_sender="") is not None  # type: ignore[arg-type]
    assert (
        automated_reason(  # type: ignore[arg-type]
            message, sender="support@support.example.com", own_addresses=["support@support.example.com"]
        )
        == "sent from our own address (support@support.example.com)"
    )


def test_out_of_office_subjects_without_headers_are_flagged():
    message = message_from_bytes(
        b"From: j@example.com\r\nSubject: Automatic reply: Your order\r\n\r\nAway\r\n", policy=policy.default
    )
    assert automated_reason(message, sender="j@example.com") is not None  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------- bounces


def dsn(original_message_id: str, *, action: str = "failed", status: str = "5.1.1") -> bytes:
    """A delivery status notification (RFC 3464) as Postfix writes it, for a message we sent."""
    return crlf(
        f"""From: MAILER-DAEMON@mx.example.com (Mail Delivery System)
To: support@support.example.com
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
Message-Id: <dsn-1@mx.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="dsn"

--dsn
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not be delivered.

--dsn
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; gone@example.com
Original-Recipient: rfc822;gone@example.com
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.com>: Recipient address
    rejected: User unknown

--dsn
Content-Type: message/rfc822

From: Acme Support <support@support.example.com>
To: gone@example.com
Subject: Your order [#5]
Message-ID: {original_message_id}

Your parcel is on its way.

--dsn--
""".encode()
    )


def test_a_dsn_yields_the_failed_recipient_the_reason_and_the_original_message_id():
    parsed = parse_email(dsn("<out-42@support.example.com>"), envelope_sender="")

    assert parsed.inbound is None
    bounce = parsed.bounce
    assert bounce is not None
    assert bounce.action == "failed"
    assert bounce.failed
    assert bounce.status == "5.1.1"
    assert bounce.recipients == ["gone@example.com"]
    assert bounce.message_ids == ["<out-42@support.example.com>"]
    assert bounce.reason == "gone@example.com: 550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown"


def test_a_delay_report_is_not_a_failure():
    bounce = parse_email(dsn("<out-42@x>", action="delayed", status="4.4.7"), envelope_sender="").bounce

    assert bounce is not None
    assert bounce.action == "delayed"
    assert not bounce.failed


def test_a_plain_text_bounce_from_qmail_is_recognised_and_its_original_found():
    raw = crlf(
        b"Return-Path: <>\nFrom: MAILER-DAEMON@mx4.example.jp\nTo: support@support.example.com\n"
        b"Subject: failure notice\n\nHi. This is the qmail-send program at mx4.example.jp.\n"
        b"I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
        b"<kijitora@example.ne.jp>:\nremote host said: 550 Unknown user kijitora@example.ne.jp\n\n"
        b"--- Below this line is a copy of the message.\n\nMessage-ID: <out-7@support.example.com>\n"
        b"Subject: Your order\n\nhello\n"
    )
    bounce = parse_email(raw, envelope_sender="").bounce

    assert bounce is not None
    assert bounce.failed
    assert bounce.message_ids == ["<out-7@support.example.com>"]
    assert "550 Unknown user kijitora@example.ne.jp" in bounce.reason


def test_a_customer_writing_about_an_undeliverable_parcel_is_not_a_bounce():
    raw = crlf(b"From: anna@example.com\nSubject: Undeliverable parcel?\n\nThe courier says it is undeliverable.\n")
    parsed = parse_email(raw, envelope_sender="anna@example.com")

    assert parsed.bounce is None
    assert parsed.inbound is not None


@pytest.mark.parametrize(
    ("name", "action", "reason_part"),
    [
        ("sisimai__bsd__lhost-postfix-03.eml", "failed", "550 Unknown user kijitora@example.net"),
        ("sisimai__bsd__lhost-exim-01.eml", "failed", "Please use the smtp server of your ISP"),
        ("sisimai__bsd__lhost-gmail-01.eml", "failed", "550 5.1.1 <userunknown@example.jp>... User Unknown"),
        ("sisimai__bsd__lhost-qmail-01.eml", "failed", "550 Unknown user kijitora@example.ne.jp"),
        ("sisimai__bsd__lhost-sendmail-05.eml", "failed", "552 5.2.3 Message size exceeds fixed maximum"),
        ("mikel-mail__multipart_report_emails__report_422.eml", "delayed", "Mailbox full"),
        ("sisimai__bsd__rfc3464-07.eml", "delayed", "delay"),
    ],
)
def test_real_bounces_from_many_mail_servers_are_understood(name: str, action: str, reason_part: str):
    raw = (corpus_mail_dir() / name).read_bytes()
    bounce = parse_email(raw, envelope_sender="").bounce

    assert bounce is not None
    assert bounce.action == action
    assert reason_part in bounce.reason
    assert bounce.message_ids or name.endswith("postfix-01.eml")


@pytest.mark.parametrize(
    "name", ["sisimai__not__is-not-bounce-01.eml", "sisimai__not__is-not-bounce-02.eml", "sisimai__bsd__rfc3834-01.eml"]
)
def test_real_mail_that_is_not_a_bounce_is_not_mistaken_for_one(name: str):
    raw = (corpus_mail_dir() / name).read_bytes()
    assert parse_email(raw, envelope_sender="someone@example.com").bounce is None
