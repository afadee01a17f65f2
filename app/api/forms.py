"""The web contact form: ``POST /api/v1/forms/ID`` from any page, and its copyable HTML for admins.

Public on purpose: a contact form is like a mailbox. Spam is kept out by a hidden honeypot field (a filled
one gets the normal "thank you" and stores nothing) and a per-address rate limit. When the channel lists
``allowed_origins``, posts from other origins are refused and listed ones may post JSON cross-origin (CORS).
The email typed in is a claim, so the message joins that address's customer and conversation but the
submitter is shown nothing of it; the reply goes to the address by email.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, redirect, request

from app.api.auth import public, role_required
from app.api.errors import ApiError
from app.api.validation import documented
from app.extensions import db, limiter
from app.models import Channel, utcnow
from app.services.ingest import ingest
from connectors.chat.payload import canonical_origin, origin_allowed
from connectors.form.parsing import DEFAULT_HONEYPOT, InvalidSubmission, is_spam, parse_submission, snippet, to_inbound

bp = Blueprint("forms", __name__, url_prefix="/api/v1/forms")

THANK_YOU = {
    "en": ("Thank you", "We have your message and will answer by email."),
    "pl": ("Dziękujemy", "Otrzymaliśmy Twoją wiadomość i odpowiemy e-mailem."),
}


def _form_channel(channel_id: int) -> Channel:
    channel = db.session.get(Channel, channel_id)
    if channel is None or channel.kind != "form" or not channel.enabled:
        raise ApiError(404, "not_found", "Unknown form.")
    return channel


def _allowed_origins(channel: Channel) -> list[str]:
    origins = (channel.settings or {}).get("allowed_origins") or []
    return [o for o in origins if isinstance(o, str) and o.strip() != "*"]


def _cors(response: Response, channel: Channel) -> Response:
    origin = request.headers.get("Origin")
    if origin and origin_allowed(origin, _allowed_origins(channel)):
        response.headers["Access-Control-Allow-Origin"] = canonical_origin(origin) or ""
        response.headers["Access-Control-Allow-Methods"] = "POST"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    response.headers["Vary"] = "Origin"
    return response


def _wants_json() -> bool:
    return request.mimetype == "application/json"


def _submission_data() -> dict[str, Any]:
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.to_dict()
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "Send the form fields as JSON or form-encoded.")
    return data


def _thank_you(channel: Channel) -> Any:
    settings = channel.settings or {}
    target = settings.get("redirect_url")
    if isinstance(target, str) and urlsplit(target).scheme in ("http", "https"):
        return redirect(target, code=303)
    locale = "pl" if request.accept_languages.best_match(["en", "pl"]) == "pl" else "en"
    title, text = THANK_YOU[locale]
    message = settings.get("success_message")
    if isinstance(message, str) and message.strip():
        text = message
    page = (
        f'<!doctype html><html lang="{locale}"><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        '<body style="font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem">'
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    )
    response = Response(page, mimetype="text/html")
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


@bp.route("/<int:channel_id>", methods=["OPTIONS"])
@public  # the CORS preflight for JSON posts from an allowed origin
def preflight(channel_id: int) -> Any:
    """Answer the browser's CORS preflight for a JSON post."""
    return _cors(Response(status=204), _form_channel(channel_id))


@bp.post("/<int:channel_id>")
@public  # a contact form on a public page; protected by honeypot, rate limit and optional origin list
@limiter.limit(lambda: str(current_app.config.get("FORM_RATE_LIMIT", "5 per minute")), methods=["POST"])
@documented(summary="Submit a contact form (JSON or form-encoded: name, email, subject, message)")
def submit(channel_id: int) -> Any:
    """Store a contact-form message under the sender's email identity, creating or continuing a conversation."""
    channel = _form_channel(channel_id)
    origin = request.headers.get("Origin")
    allowed = _allowed_origins(channel)
    if allowed and origin and origin != "null" and not origin_allowed(origin, allowed):
        raise ApiError(403, "origin_not_allowed", "This site may not post to this form.")
    data = _submission_data()
    honeypot = str((channel.settings or {}).get("honeypot_field") or DEFAULT_HONEYPOT)
    if not is_spam(data, honeypot):
        try:
            submission = parse_submission(data, max_chars=current_app.config["MAX_MESSAGE_CHARS"])
        except InvalidSubmission as exc:
            raise ApiError(422, "validation_failed", "The form has invalid fields.", exc.fields) from None
        now = utcnow()
        ingest(
            to_inbound(
                channel.id,
                submission,
                now,
                {"ip": request.remote_addr, "origin": canonical_origin(origin), "form": channel.name},
            ),
            channel,
        )
    # A bot that filled the honeypot gets the same answer as a person, so it learns nothing.
    if _wants_json():
        return _cors(jsonify(ok=True), channel), 201
    return _cors(_thank_you(channel), channel)


@bp.get("/<int:channel_id>/snippet")
@role_required("admin")
@documented(summary="Copyable HTML for a form that posts to this channel")
def form_snippet(channel_id: int) -> Any:
    """Return the HTML form an admin pastes into a page."""
    channel = db.session.get(Channel, channel_id)
    if channel is None or channel.kind != "form":
        raise ApiError(404, "not_found", "Unknown form.")
    action = f"{current_app.config['PUBLIC_URL']}/api/v1/forms/{channel.id}"
    honeypot = str((channel.settings or {}).get("honeypot_field") or DEFAULT_HONEYPOT)
    return jsonify(html=snippet(action, honeypot=honeypot), action=action, honeypot_field=honeypot)
