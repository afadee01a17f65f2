"""SMS helpers for the reply box: how a text would travel (segments, GSM-7 or UCS-2)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from pydantic import Field

from app.api.auth import role_required
from app.api.validation import Schema, documented, validate
from connectors.twilio.rest import MAX_SMS_CHARS
from connectors.twilio.segments import count_segments

bp = Blueprint("sms", __name__, url_prefix="/api/v1/sms")


class SegmentsBody(Schema):
    # Stripped like the reply itself is before it is sent.
    body: str = Field(max_length=10 * MAX_SMS_CHARS)


class SegmentsResponse(Schema):
    encoding: str
    segments: int
    units: int
    remaining: int
    non_gsm_characters: list[str]
    characters: int
    max_characters: int
    too_long: bool


@bp.post("/segments")
@role_required("agent")
@validate(body=SegmentsBody)
@documented(summary="Count the SMS segments and the encoding (GSM-7 or UCS-2) of a text", response=SegmentsResponse)
def segments(body: SegmentsBody) -> Any:
    """Tell the reply box how many segments the text would take and which characters force UCS-2."""
    info = count_segments(body.body).as_dict()
    characters = len(body.body)
    return jsonify(
        {**info, "characters": characters, "max_characters": MAX_SMS_CHARS, "too_long": characters > MAX_SMS_CHARS}
    )
