"""X-Twilio-Signature validation with the twilio library, against the URL Twilio was configured with.

Behind a proxy or load balancer ``request.url`` shows the internal scheme/host, so the URL that Twilio
signed is rebuilt from the configured PUBLIC_URL plus the path and the raw query string of the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

__all__ = ["SIGNATURE_HEADER", "SIGNATURE_SETTINGS_HEADER", "compute_signature", "public_url", "validate_signature"]


def public_url(base: str, path: str, query_string: bytes | str = b"") -> str:
    """Return the URL Twilio requested: PUBLIC_URL (scheme, host, optional prefix) + path + raw query."""
    base = base.rstrip("/")
    # A PUBLIC_URL prefix ("/helpdesk") is already stripped from the path by the proxy or SCRIPT_NAME.
    prefix = urlsplit(base).path
    if prefix and path.startswith(prefix + "/"):
        path = path[len(prefix) :]
    query = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    return f"{base}{path}" + (f"?{query}" if query else "")


def validate_signature(
    auth_token: str,
    url: str,
    params: Mapping[str, Any] | None,
    signature: str | None,
    settings_header: str | None = None,
) -> bool:
    """Return whether ``signature`` is Twilio's signature of ``url`` + ``params`` under ``auth_token``.

    ``params`` may be a Werkzeug MultiDict (repeated keys are covered); a missing token or signature is
    never valid.
    """
    if not auth_token or not signature:
        return False
    algorithm = get_signature_algorithm(settings_header)
    return bool(RequestValidator(auth_token).validate(url, params or {}, signature, algorithm))


def compute_signature(auth_token: str, url: str, params: Mapping[str, Any] | None) -> str:
    """Return the X-Twilio-Signature Twilio would send for ``url`` and ``params`` (tests, benchmarks)."""
    return str(RequestValidator(auth_token).compute_signature(url, params or {}))
