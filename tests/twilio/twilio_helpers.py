"""Helpers for the Twilio tests: the shared corpus and signed webhook bodies."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from werkzeug.datastructures import MultiDict

from connectors.twilio.signature import compute_signature

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "twilio"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "12345"  # the corpus payloads are signed with the official vectors' token
PUBLIC_URL = "https://helpdesk.example.com"
SHOP_SMS = "+15558675310"  # the corpus payloads' To number
SHOP_VOICE = "+18005551212"


def corpus_dir() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"shared Twilio corpus not found at {CORPUS.resolve()}")
    return CORPUS


def load_payload(name: str) -> dict[str, Any]:
    """Return one documented payload from ../shared/corpus/twilio/payloads/<name>.json."""
    return json.loads((corpus_dir() / "payloads" / f"{name}.json").read_text())


def payload_names() -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(path.stem for path in (CORPUS / "payloads").glob("*.json"))


def form(body_urlencoded: str) -> MultiDict:
    """Decode a body the way Werkzeug fills request.form (repeated keys kept)."""
    return MultiDict(parse_qsl(body_urlencoded, keep_blank_values=True))


def signed(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> tuple[str, dict[str, str]]:
    """Return (urlencoded body, headers) for a POST Twilio would send to ``url``, with its real signature."""
    return urlencode(params), {
        "X-Twilio-Signature": compute_signature(token, url, params),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def payload_params(name: str, **changes: str) -> dict[str, str]:
    """The form fields of a documented Twilio payload, with ``changes`` applied."""
    params = form(load_payload(name)["body_urlencoded"]).to_dict()
    params.update(changes)
    return params


def twiml_of(response: Any) -> ET.Element:
    """The TwiML document of a webhook response, parsed (after checking it is a 200 XML answer)."""
    assert response.status_code == 200, response.data
    assert response.mimetype == "application/xml"
    return ET.fromstring(response.data)
