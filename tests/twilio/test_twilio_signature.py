"""X-Twilio-Signature: the official vectors and every corpus payload, through our validation wrapper."""

from __future__ import annotations

import json

import pytest
from twilio_helpers import corpus_dir, form, load_payload, payload_names

from connectors.twilio.signature import compute_signature, public_url, validate_signature


def _vectors() -> dict:
    return json.loads((corpus_dir() / "signature_test_vectors.json").read_text())


def test_official_vectors_validate() -> None:
    data = _vectors()
    token = data["auth_token"]
    basic = data["vectors"][0]["params"]
    checked = 0
    for vector in data["vectors"]:
        if "signature" not in vector:
            continue
        if "params_multi" in vector:
            params = form(vector["body_urlencoded"])
            assert compute_signature(token, vector["url"], params) == vector["signature"], vector["name"]
        elif "body" in vector:
            params = vector["body"]  # JSON body: the URL's bodySHA256 covers it
        else:
            params = basic if vector["params"] == "same as first vector" else vector["params"]
        assert validate_signature(token, vector["url"], params, vector["signature"]), vector["name"]
        checked += 1
    assert checked == 8


def test_docs_worked_example_string_to_sign() -> None:
    vector = _vectors()["vectors"][-1]
    import base64
    import hashlib
    import hmac

    from twilio.request_validator import RequestValidator

    expected = base64.b64encode(hmac.new(b"12345", vector["string_to_sign"].encode(), hashlib.sha1).digest()).decode()
    assert (
        expected == vector["signature"] == RequestValidator("12345").compute_signature(vector["url"], vector["params"])
    )


def test_duplicate_keys_need_every_value() -> None:
    vector = _vectors()["vectors"][1]
    full = form(vector["body_urlencoded"])
    assert validate_signature("12345", vector["url"], full, vector["signature"])
    first_only = {key: full[key] for key in full}  # a plain dict loses Digits=5678
    assert not validate_signature("12345", vector["url"], first_only, vector["signature"])


@pytest.mark.parametrize("name", payload_names())
def test_every_corpus_payload_validates_from_its_urlencoded_body(name: str) -> None:
    payload = load_payload(name)
    params = form(payload["body_urlencoded"])
    assert params.to_dict() == payload["params"]
    token = payload["auth_token_for_signature"]
    assert validate_signature(token, payload["url"], params, payload["x_twilio_signature"])
    assert compute_signature(token, payload["url"], params) == payload["x_twilio_signature"]


@pytest.mark.parametrize("name", payload_names())
def test_tampering_breaks_every_corpus_payload(name: str) -> None:
    payload = load_payload(name)
    params = form(payload["body_urlencoded"])
    signature = payload["x_twilio_signature"]
    tampered = params.copy()
    first_key = next(iter(tampered))
    tampered[first_key] = tampered[first_key] + "x"
    assert not validate_signature("12345", payload["url"], tampered, signature)
    added = params.copy()
    added["Injected"] = "1"
    assert not validate_signature("12345", payload["url"], added, signature)
    assert not validate_signature("54321", payload["url"], params, signature)
    assert not validate_signature("12345", payload["url"] + "/", params, signature)
    assert not validate_signature("12345", payload["url"].replace("https://", "http://"), params, signature)


def test_missing_signature_or_token_is_never_valid() -> None:
    payload = load_payload("sms_incoming")
    assert not validate_signature("12345", payload["url"], payload["params"], None)
    assert not validate_signature("12345", payload["url"], payload["params"], "")
    assert not validate_signature("", payload["url"], payload["params"], payload["x_twilio_signature"])


def test_polish_utf8_body_is_signed_over_utf8_bytes() -> None:
    payload = load_payload("sms_incoming_polish_utf8")
    params = form(payload["body_urlencoded"])
    assert "Łukasz" in params["Body"]
    assert validate_signature("12345", payload["url"], params, payload["x_twilio_signature"])


def test_public_url_rebuilds_what_twilio_signed() -> None:
    assert (
        public_url("https://help.example.com", "/webhooks/twilio/sms") == "https://help.example.com/webhooks/twilio/sms"
    )
    assert public_url("https://help.example.com/", "/x", b"") == "https://help.example.com/x"
    assert public_url("https://help.example.com", "/webhooks/twilio/sms/status", b"m=12") == (
        "https://help.example.com/webhooks/twilio/sms/status?m=12"
    )
    # A path prefix in PUBLIC_URL, whether or not the proxy strips it before the app sees the path.
    assert public_url("https://ex.com/desk", "/webhooks/twilio/voice") == "https://ex.com/desk/webhooks/twilio/voice"
    assert (
        public_url("https://ex.com/desk", "/desk/webhooks/twilio/voice") == "https://ex.com/desk/webhooks/twilio/voice"
    )
    # The raw query is kept byte for byte (Twilio signs the URL exactly as configured).
    assert public_url("https://ex.com", "/v", b"to=%2B48601234567&a=1") == "https://ex.com/v?to=%2B48601234567&a=1"
