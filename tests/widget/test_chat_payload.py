"""Pure widget and form parsing: origins, client ids, text cleaning, file sniffing, HMAC, form fields."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest

from connectors.chat.payload import (
    InvalidPayload,
    canonical_origin,
    clean_text,
    origin_allowed,
    parse_message,
    provider_id,
    safe_filename,
    sniff_content_type,
    user_hash,
    verify_user_hash,
)
from connectors.form.parsing import InvalidSubmission, is_spam, parse_submission, snippet, submission_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://Shop.Example", "https://shop.example"),
        ("https://shop.example:443/path?q=1", "https://shop.example"),
        ("http://shop.example:8080", "http://shop.example:8080"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("null", None),
        ("*", None),
        ("ftp://shop.example", None),
        ("javascript:alert(1)", None),
        ("", None),
    ],
)
def test_canonical_origin(value: str, expected: str | None) -> None:
    assert canonical_origin(value) == expected


def test_origin_allowed_is_exact_and_never_wildcard() -> None:
    allowed = ["https://shop.example", "*"]
    assert origin_allowed("https://SHOP.example:443", allowed)
    assert not origin_allowed("https://shop.example.evil.example", allowed)
    assert not origin_allowed("http://shop.example", allowed)  # another scheme is another origin
    assert not origin_allowed("https://evil.example", allowed)
    assert not origin_allowed("https://evil.example", "*")
    assert not origin_allowed(None, allowed)


def test_parse_message_validates_every_field() -> None:
    message = parse_message({"client_id": "abcDEF12_-", "text": "  hi\r\nthere\x00 "}, max_chars=100)
    assert message.text == "hi\nthere"
    with pytest.raises(InvalidPayload, match="client_id"):
        parse_message({"client_id": "short", "text": "hi"}, max_chars=100)
    with pytest.raises(InvalidPayload, match="text"):
        parse_message({"client_id": "abcdefgh", "text": "x" * 101}, max_chars=100)
    with pytest.raises(InvalidPayload, match="text"):
        parse_message({"client_id": "abcdefgh", "text": "\u200b "}, max_chars=100)
    with pytest.raises(InvalidPayload, match="attachments"):
        parse_message({"client_id": "abcdefgh", "attachments": "token"}, max_chars=100)
    with pytest.raises(InvalidPayload):
        parse_message(["not", "an", "object"], max_chars=100)
    assert parse_message({"client_id": "abcdefgh", "attachments": ["t"]}, max_chars=100).text == ""


def test_clean_text_keeps_markup_as_plain_text() -> None:
    assert clean_text("<script>alert(1)</script>", 100) == "<script>alert(1)</script>"
    assert clean_text("a\u202eb", 100) == "ab"  # no bidi overrides to disguise text


def test_provider_id_is_scoped_to_the_visitor() -> None:
    assert provider_id("visitor-a", "same-client-id") != provider_id("visitor-b", "same-client-id")


def test_sniff_content_type_trusts_bytes_not_claims() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
    assert sniff_content_type(png, "application/pdf") == "image/png"
    assert sniff_content_type(b"%PDF-1.7 ...", None) == "application/pdf"
    assert sniff_content_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp") == "image/webp"
    assert sniff_content_type(b"MZ\x90\x00", "image/png") == "application/octet-stream"
    assert sniff_content_type("zażółć".encode(), "text/plain") == "text/plain"
    assert sniff_content_type(b"\xff\xfe\x00bad", "text/plain") == "application/octet-stream"
    assert sniff_content_type(b"<html>", "text/html") == "text/html"  # unknown kinds keep their claim


def test_safe_filename_strips_paths_and_control_characters() -> None:
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\Users\\a\\invoice.pdf") == "invoice.pdf"
    assert safe_filename("bad\x00name.png") == "badname.png"
    assert safe_filename("") == "file"
    assert len(safe_filename("a" * 300 + ".png")) <= 120


def test_user_hash_is_hmac_sha256_hex() -> None:
    # What a shop computes on its server, e.g. in Python: hmac.new(secret, user_id, sha256).hexdigest().
    assert user_hash("secret", "42") == hmac.new(b"secret", b"42", hashlib.sha256).hexdigest()
    good = user_hash("secret", "42")
    assert len(good) == 64
    assert verify_user_hash("secret", "42", good.upper())
    assert not verify_user_hash("secret", "43", good)
    assert not verify_user_hash("other", "42", good)
    assert not verify_user_hash(None, "42", good)
    assert not verify_user_hash("secret", "42", None)


def test_form_submission_parsing() -> None:
    submission = parse_submission(
        {"name": " Anna \n Nowak ", "email": "Anna@Example.COM", "subject": "Hi", "message": "Hello\r\nthere"}
    )
    assert submission.name == "Anna Nowak"
    assert submission.email.value == "anna@example.com"
    assert submission.message == "Hello\nthere"
    with pytest.raises(InvalidSubmission) as caught:
        parse_submission({"email": "", "message": ""})
    assert set(caught.value.fields) == {"email", "message"}
    assert is_spam({"website": "http://x"})
    assert not is_spam({"website": "  "})
    assert is_spam({"trap": "x"}, "trap")


def test_form_submission_id_dedupes_within_the_hour() -> None:
    submission = parse_submission({"email": "a@example.com", "message": "hi"})
    at = dt.datetime(2025, 5, 1, 10, 5, tzinfo=dt.UTC)
    assert submission_id(1, submission, at) == submission_id(1, submission, at + dt.timedelta(minutes=30))
    assert submission_id(1, submission, at) != submission_id(1, submission, at + dt.timedelta(hours=1))
    assert submission_id(1, submission, at) != submission_id(2, submission, at)


def test_form_snippet_escapes_its_inputs() -> None:
    html = snippet('https://x.example/api/v1/forms/1"><script>', honeypot="hp")
    assert "<script>" not in html
    assert 'name="hp"' in html
