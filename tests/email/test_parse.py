"""Parsing raw mail into InboundMessage: the project's own fixtures cover what real mail throws at us."""

from __future__ import annotations

import hashlib

import pytest

from connectors.email.parse import (
    UnusableMessage,
    conversation_number,
    decode_header_text,
    parse_email,
    provider_id_for,
    repair_header_block,
)
from tests.email.conftest import crlf, fixture_bytes


def inline_url(sha256: str) -> str:
    return f"/api/v1/email/inline/{sha256}"


def parse(raw: bytes, **kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("inline_url", inline_url)
    result = parse_email(raw, **kwargs)
    assert result.bounce is None
    assert result.inbound is not None
    return result.inbound


def test_polish_reply_decodes_encoded_words_in_iso_8859_2_and_windows_1250_and_a_quoted_printable_body():
    message = parse(fixture_bytes("polish_reply.eml"))

    assert message.sender.value == "pawel@example.pl"
    assert message.sender_name == "Paweł Żółtowski"  # =?windows-1250?B?…?=
    assert message.subject == "Re: Zamówienie nr 5 łódź [#5]"  # =?iso-8859-2?Q?…?=
    assert message.text.startswith("Dzień dobry,\n\npaczka nadal nie dotarła.")
    assert message.thread.message_id == "<reply-pl-1@example.pl>"
    assert message.thread.in_reply_to == "<out-1@support.example.com>"
    assert message.thread.references == ["<first-1@example.pl>", "<out-1@support.example.com>"]
    assert message.thread.conversation_number == 5
    assert message.automated is False


def test_polish_reply_folds_the_w_dniu_quote_and_the_signature_but_keeps_the_full_text():
    message = parse(fixture_bytes("polish_reply.eml"))

    assert message.metadata["email"]["visible_text"] == (
        "Dzień dobry,\n\npaczka nadal nie dotarła. Proszę o pilną odpowiedź."
    )
    assert "> paczka została wysłana kurierem." in message.text  # the full text stays available


def test_html_mail_keeps_the_text_part_and_sanitised_html_with_cid_images_pointing_at_served_files():
    message = parse(fixture_bytes("html_inline_image.eml"))

    assert message.text == "Hello, here is my invoice."
    html = message.html or ""
    for hostile in ("<script", "onclick", "javascript:", "<iframe", "<style", "alert("):
        assert hostile not in html
    assert '<a href="https://shop.example.com/order/5"' in html
    logo = next(item for item in message.attachments if item.content_id == "logo@example.com")
    assert logo.inline is True
    assert logo.filename == "logo.png"
    assert logo.content_type == "image/png"
    assert f'src="{inline_url(hashlib.sha256(logo.data).hexdigest())}"' in html
    assert "cid:" not in html
    # The tracking pixel is kept for the console, which shows it only when the agent asks; it is counted.
    assert message.metadata["email"]["remote_images"] == 1


def test_attachment_names_encoded_with_rfc_2231_are_decoded_and_contents_base64_decoded():
    message = parse(fixture_bytes("html_inline_image.eml"))

    invoice = next(item for item in message.attachments if item.content_type == "application/pdf")
    assert invoice.filename == "faktura-żółć.pdf"
    assert invoice.data.startswith(b"%PDF-1.4")
    assert invoice.inline is False


def test_garbage_before_the_headers_and_obsolete_header_syntax_are_repaired():
    message = parse(fixture_bytes("garbage_no_from.eml"), envelope_sender="buyer@example.com")

    assert message.subject == "Where is my order?"
    assert message.text == "I ordered last week and nothing came."


def test_missing_from_date_and_message_id_fall_back_to_the_envelope_sender():
    message = parse(fixture_bytes("garbage_no_from.eml"), envelope_sender="buyer@example.com")

    assert message.sender.value == "buyer@example.com"
    assert message.thread.message_id is None
    assert "date" not in message.metadata["email"]
    assert message.provider_id  # still idempotent: the bytes identify it


def test_mail_with_no_usable_sender_anywhere_is_refused_with_a_reason():
    with pytest.raises(UnusableMessage, match="no usable sender"):
        parse_email(fixture_bytes("garbage_no_from.eml"), envelope_sender="")


def test_lying_and_unknown_charsets_decode_as_what_the_bytes_really_are():
    message = parse(fixture_bytes("lying_charset.eml"))

    # Declared us-ascii, really Windows-1250; then an X-UNKNOWN label on UTF-8.
    assert message.text == "Zażółć gęślą jaźń — cena 100 zł\n\nDruga część: żółty"
    # Encoded words in an unknown charset (x-unknown, NONE) still decode.
    assert message.sender_name == "Zając"
    assert message.subject == "TestŻółty"


def test_forwarded_messages_are_shown_in_the_text_and_kept_as_an_eml_attachment():
    message = parse(fixture_bytes("forwarded.eml"))

    assert "See the confirmation below" in message.text
    assert "---------- Forwarded message ----------" in message.text
    assert "From: Shop <orders@shop.example.com>" in message.text
    assert "Order 77 ships to: Old Street 1." in message.text
    original = next(item for item in message.attachments if item.content_type == "message/rfc822")
    assert original.filename == "Your order confirmation.eml"
    assert b"Message-ID: <order-77@shop.example.com>" in original.data
    assert message.metadata["email"]["forwarded"][0]["subject"] == "Your order confirmation"
    assert "visible_text" not in message.metadata["email"]  # forwarded content is never folded away


def test_auto_replies_are_flagged_with_the_reason():
    message = parse(fixture_bytes("autoreply.eml"))

    assert message.automated is True
    assert message.metadata["email"]["automated_reason"] == "Auto-Submitted: auto-replied"


def test_every_message_keeps_its_raw_source_byte_for_byte():
    raw = fixture_bytes("html_inline_image.eml")

    assert parse(raw).raw == raw


def test_provider_id_survives_line_ending_changes_but_differs_for_different_bodies():
    raw = fixture_bytes("polish_reply.eml")
    lf = raw.replace(b"\r\n", b"\n")
    other = raw.replace(b"nadal", b"wciaz")

    assert parse(raw).provider_id == parse(lf).provider_id
    assert parse(raw).provider_id != parse(other).provider_id
    # Two different mails reusing one Message-ID (senders do that) are still two messages.
    assert provider_id_for(raw, "<same@x>") != provider_id_for(other, "<same@x>")


def test_unquoted_boundary_containing_equals_signs_still_splits_the_parts():
    raw = crlf(
        b"From: a@example.com\nTo: support@support.example.com\nSubject: outlook\n"
        b"Content-Type: multipart/alternative; boundary=----=_NextPart_000_0093_01C81419.EB75E850\n\n"
        b"------=_NextPart_000_0093_01C81419.EB75E850\nContent-Type: text/plain; charset=iso-8859-1\n\n"
        b"Plain caf\xe9\n------=_NextPart_000_0093_01C81419.EB75E850\nContent-Type: text/html\n\n"
        b"<p>Html</p>\n------=_NextPart_000_0093_01C81419.EB75E850--\n"
    )
    message = parse(raw)

    assert message.text == "Plain café"
    assert message.html == "<p>Html</p>"
    assert message.attachments == []


def test_misspelled_transfer_encodings_are_still_decoded():
    raw = crlf(
        b"From: a@example.com\nSubject: x\nContent-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: quoted printable;\n\nZa=C5=BC=C3=B3=C5=82=C4=87\n"
    )
    assert parse(raw).text == "Zażółć"


def test_a_multibyte_character_split_across_two_encoded_words_is_joined():
    # "ż" is C5 BC in UTF-8; a sender split it between two words.
    assert decode_header_text("=?utf-8?Q?Ro=C5?= =?utf-8?Q?=BCa?=") == "Roża"
    assert decode_header_text("=?ISO-8859-2?Q?=A3=F3d=BC?=") == "Łódź"
    assert decode_header_text("=?windows-1250?B?pWJj?=") == "Ąbc"


def test_raw_8bit_headers_use_the_body_charset_as_the_hint():
    raw = crlf(b"From: a@example.com\nSubject: Forma\xe7\xe3o\nContent-Type: text/plain; charset=iso-8859-1\n\nx\n")
    assert parse(raw).subject == "Formação"


def test_nul_characters_and_lone_surrogates_never_reach_the_database():
    raw = crlf(
        b"From: a@example.com\nSubject: a\x00b\nContent-Type: text/plain; charset=utf-8\n\nnul\x00here \xed\xa0\x80\n"
    )
    message = parse(raw)

    assert "\x00" not in message.text
    assert "\x00" not in (message.subject or "")
    message.text.encode("utf-8")  # no surrogates


def test_absurdly_nested_multiparts_are_walked_to_a_bounded_depth():
    raw = b"From: a@example.com\r\nSubject: deep\r\n"
    for level in range(60):
        raw += f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n'.encode()
    raw += b"Content-Type: text/plain\r\n\r\ndeep inside\r\n"
    message = parse(raw)  # no RecursionError, no crash

    assert message.sender.value == "a@example.com"


def test_conversation_number_is_read_from_the_subject_tag():
    assert conversation_number("Re: Parcel [#1234]") == 1234
    assert conversation_number("[Online Lead] Online Lead #1111111") is None
    assert conversation_number(None) is None


def test_header_block_repair_keeps_a_body_that_lacks_the_blank_separator_line():
    repaired = repair_header_block(b"From: a@example.com\r\nSubject: x\r\nHello there, no blank line\r\nmore\r\n")

    assert repaired == b"From: a@example.com\r\nSubject: x\r\n\r\nHello there, no blank line\r\nmore\r\n"


def test_a_parser_bug_still_stores_the_mail_as_raw_text(monkeypatch: pytest.MonkeyPatch):
    import connectors.email.parse as parse_module

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("simulated parser bug")

    monkeypatch.setattr(parse_module, "sanitize_html", broken)  # stands in for any bug in our parsing code
    message = parse(fixture_bytes("html_inline_image.eml"))

    assert message.sender.value == "ola@example.com"  # from the From line of the raw text
    assert "Subject: Invoice" in message.text
    assert message.metadata["email"]["parse_error"] == "RuntimeError: simulated parser bug"
    assert message.raw == fixture_bytes("html_inline_image.eml")
