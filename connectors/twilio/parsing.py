"""Pure parsing of Twilio webhook parameters (already signature-checked) into connector types.

No database and no Flask: every function takes the form parameters as a mapping and returns plain data.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Identity, InboundMessage, InvalidIdentity

# Twilio's default opt-out keywords (Messaging > Advanced Opt-Out uses the same defaults). Matching is on the
# whole trimmed body, case-insensitive, as carriers and Twilio do.
STOP_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
START_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

# Call statuses Twilio reports (CallStatus, DialCallStatus) and which of them end a call.
TERMINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})

# The standard geo fields are kept as metadata; everything else stays in ``raw_params`` for debugging.
_GEO_FIELDS = ("FromCity", "FromState", "FromZip", "FromCountry", "ToCity", "ToState", "ToZip", "ToCountry")


class TwilioPayloadError(ValueError):
    """The parameters are not a usable Twilio request (missing sid, unparsable sender…)."""


def _first(params: Mapping[str, Any], name: str) -> str:
    """Return one value of ``name`` from a dict or a MultiDict, '' when absent."""
    value = params.get(name)
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return str(value[0]) if value else ""
    return str(value)


def _int(value: str) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _phone_identity(value: str, default_region: str | None, field_name: str) -> Identity:
    try:
        return Identity.parse("phone", value, default_region)
    except InvalidIdentity as exc:
        raise TwilioPayloadError(f"{field_name} {value!r} is not a phone number: {exc.reason}") from None


def _normalized_number(value: str, default_region: str | None) -> str:
    """Return ``value`` in E.164 when it is a phone number, else unchanged."""
    try:
        return Identity.parse("phone", value, default_region).value
    except InvalidIdentity:
        return value


def plain_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Return the parameters as a flat dict of first values (for metadata)."""
    return {str(key): _first(params, key) for key in params}


def opt_keyword(body: str, opt_out_type: str = "") -> str | None:
    """Return "stop", "start" or "help" when the SMS is an opt-out keyword, else None.

    Twilio's Advanced Opt-Out sends ``OptOutType`` with its own verdict (it knows custom keywords); it wins.
    """
    if opt_out_type.strip():
        kind = opt_out_type.strip().lower()
        return kind if kind in ("stop", "start", "help") else None
    word = body.strip().strip(".!").upper()
    if word in STOP_KEYWORDS:
        return "stop"
    if word in START_KEYWORDS:
        return "start"
    if word in HELP_KEYWORDS:
        return "help"
    return None


@dataclass(slots=True)
class MediaItem:
    """One MMS media item, fetched later by the worker with the account credentials."""

    url: str
    content_type: str

    def as_dict(self) -> dict[str, str]:
        return {"url": self.url, "content_type": self.content_type}


def parse_media(params: Mapping[str, Any]) -> list[MediaItem]:
    """Return the MMS media items; MediaUrl{N} is zero-based and runs to NumMedia-1."""
    count = _int(_first(params, "NumMedia")) or 0
    items = []
    for index in range(max(0, min(count, 10))):  # Twilio allows at most 10 media per message
        url = _first(params, f"MediaUrl{index}")
        if url:
            items.append(MediaItem(url, _first(params, f"MediaContentType{index}") or "application/octet-stream"))
    return items


def parse_sms(params: Mapping[str, Any], default_region: str | None = None) -> InboundMessage:
    """Turn an incoming SMS/MMS webhook into an InboundMessage; raise TwilioPayloadError when unusable."""
    sid = _first(params, "MessageSid") or _first(params, "SmsMessageSid") or _first(params, "SmsSid")
    if not sid:
        raise TwilioPayloadError("MessageSid is missing")
    sender = _phone_identity(_first(params, "From"), default_region, "From")
    # A short code or channel address stays as given and is matched against the channel that way.
    recipient = _normalized_number(_first(params, "To"), default_region)
    body = _first(params, "Body")
    media = parse_media(params)
    metadata: dict[str, Any] = {
        "twilio": {
            "account_sid": _first(params, "AccountSid"),
            "messaging_service_sid": _first(params, "MessagingServiceSid") or None,
            "num_segments": _int(_first(params, "NumSegments")),
            "num_media": len(media),
            "geo": {name: value for name in _GEO_FIELDS if (value := _first(params, name))},
        },
    }
    if media:
        metadata["media"] = [item.as_dict() for item in media]
    keyword = opt_keyword(body, _first(params, "OptOutType"))
    if keyword:
        metadata["opt_keyword"] = keyword
    return InboundMessage(
        channel="sms",
        sender=sender,
        recipient=recipient,
        sender_name=_first(params, "ProfileName") or None,
        text=body,
        provider_id=sid,
        kind="message",
        metadata=metadata,
    )


# Twilio's outbound message statuses mapped onto the outbox's delivery_status values.
_SMS_STATUS_MAP = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
    "partially_delivered": "delivered",
}

# A delivery status only ever moves forward; callbacks may arrive out of order.
DELIVERY_RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3}

# The error codes agents meet most, explained (https://www.twilio.com/docs/api/errors).
ERROR_DESCRIPTIONS = {
    "21211": "invalid 'To' phone number",
    "21408": "sending to this region is not enabled on the Twilio account",
    "21610": "the recipient has replied STOP and is unsubscribed",
    "21612": "the 'To' number cannot be reached from this 'From' number",
    "21614": "the 'To' number is not a mobile number",
    "30001": "queue overflow at Twilio",
    "30002": "account suspended",
    "30003": "unreachable destination handset (off or out of coverage)",
    "30004": "message blocked by the recipient or carrier",
    "30005": "unknown destination handset (number does not exist)",
    "30006": "landline or unreachable carrier",
    "30007": "message filtered by the carrier as spam",
    "30008": "unknown error at the carrier",
    "30034": "US A2P 10DLC: the sending number is not registered",
}


def describe_error(code: str | int | None, message: str | None = None) -> str | None:
    """Return a human line for a Twilio error code, keeping Twilio's code visible to the agent."""
    if code in (None, ""):
        return message or None
    text = message or ERROR_DESCRIPTIONS.get(str(code), "see https://www.twilio.com/docs/api/errors/" + str(code))
    return f"Twilio error {code}: {text}"


@dataclass(slots=True)
class SmsStatus:
    """A StatusCallback for an outbound message."""

    message_sid: str
    twilio_status: str
    delivery_status: str | None
    error_code: str | None
    error: str | None
    params: dict[str, str] = field(default_factory=dict)


def parse_sms_status(params: Mapping[str, Any]) -> SmsStatus:
    """Parse an outbound message StatusCallback; raise TwilioPayloadError when the sid is missing."""
    sid = _first(params, "MessageSid") or _first(params, "SmsSid")
    if not sid:
        raise TwilioPayloadError("MessageSid is missing")
    status = (_first(params, "MessageStatus") or _first(params, "SmsStatus")).lower()
    code = _first(params, "ErrorCode") or None
    if code == "0":
        code = None
    return SmsStatus(
        message_sid=sid,
        twilio_status=status,
        delivery_status=_SMS_STATUS_MAP.get(status),
        error_code=code,
        error=describe_error(code, _first(params, "ErrorMessage") or None) if code else None,
        params=plain_params(params),
    )


def parse_timestamp(value: str) -> dt.datetime | None:
    """Parse Twilio's RFC 2822 ``Timestamp`` into an aware datetime."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclass(slots=True)
class CallEvent:
    """One voice webhook (incoming call, status callback, dial action, recording, transcription)."""

    call_sid: str
    account_sid: str
    from_number: str
    to_number: str
    call_status: str
    direction: str
    parent_call_sid: str | None = None
    caller_name: str | None = None
    duration: int | None = None
    dial_call_status: str | None = None
    dial_call_sid: str | None = None
    dial_call_duration: int | None = None
    recording_url: str | None = None
    recording_sid: str | None = None
    recording_duration: int | None = None
    recording_status: str | None = None
    transcription_text: str | None = None
    transcription_status: str | None = None
    queue_result: str | None = None
    queue_time: int | None = None
    queue_sid: str | None = None
    # <Dial><Queue url=…>: the call that dequeued this caller (an agent answering the queue).
    dequeuing_call_sid: str | None = None
    sequence_number: int | None = None
    timestamp: dt.datetime | None = None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def withheld(self) -> bool:
        """Whether the caller hid their number (anonymous, unknown, restricted…)."""
        return not self.from_number.startswith(("+", "client:", "sip:")) and not self.from_number.isdigit()


def parse_call(params: Mapping[str, Any]) -> CallEvent:
    """Parse any voice webhook's parameters; raise TwilioPayloadError when CallSid is missing."""
    sid = _first(params, "CallSid")
    if not sid:
        raise TwilioPayloadError("CallSid is missing")
    return CallEvent(
        call_sid=sid,
        account_sid=_first(params, "AccountSid"),
        from_number=_first(params, "From") or _first(params, "Caller"),
        to_number=_first(params, "To") or _first(params, "Called"),
        call_status=_first(params, "CallStatus").lower(),
        direction=_first(params, "Direction").lower(),
        parent_call_sid=_first(params, "ParentCallSid") or None,
        caller_name=_first(params, "CallerName") or None,
        duration=_int(_first(params, "CallDuration")),
        dial_call_status=_first(params, "DialCallStatus").lower() or None,
        dial_call_sid=_first(params, "DialCallSid") or None,
        dial_call_duration=_int(_first(params, "DialCallDuration")),
        recording_url=_first(params, "RecordingUrl") or None,
        recording_sid=_first(params, "RecordingSid") or None,
        recording_duration=_int(_first(params, "RecordingDuration")),
        recording_status=_first(params, "RecordingStatus").lower() or None,
        transcription_text=_first(params, "TranscriptionText") or None,
        transcription_status=_first(params, "TranscriptionStatus").lower() or None,
        queue_result=_first(params, "QueueResult").lower() or None,
        queue_time=_int(_first(params, "QueueTime")),
        queue_sid=_first(params, "QueueSid") or None,
        # Twilio spells it "DequeingCallSid" in the <Queue> url request.
        dequeuing_call_sid=_first(params, "DequeingCallSid") or _first(params, "DequeuingCallSid") or None,
        sequence_number=_int(_first(params, "SequenceNumber")),
        timestamp=parse_timestamp(_first(params, "Timestamp")),
        params=plain_params(params),
    )


def caller_identity(event: CallEvent, default_region: str | None = None) -> Identity | None:
    """Return the caller's phone identity, or None for withheld numbers and SDK clients."""
    if event.withheld or event.from_number.startswith(("client:", "sip:")):
        return None
    try:
        return Identity.parse("phone", event.from_number, default_region)
    except InvalidIdentity:
        return None


def call_to_inbound(event: CallEvent, default_region: str | None = None) -> InboundMessage:
    """Turn an incoming call into the InboundMessage that opens its timeline item.

    A withheld number still needs a customer to hang the call on; it gets an external identity unique to the
    call, so it never merges with anyone.
    """
    sender = caller_identity(event, default_region)
    verified = sender is not None
    if sender is None:
        sender = Identity("external", f"twilio-withheld:{event.call_sid}")
    to_number = _normalized_number(event.to_number, default_region)
    return InboundMessage(
        channel="voice",
        sender=sender,
        recipient=to_number,
        sender_name=event.caller_name,
        text="",
        provider_id=event.call_sid,
        kind="call",
        received_at=event.timestamp,
        metadata={
            "sender_verified": verified,
            "twilio": {
                "account_sid": event.account_sid,
                "direction": event.direction,
                "from": event.from_number,
                "to": event.to_number,
                "geo": {name: value for name in _GEO_FIELDS if (value := event.params.get(name))},
            },
        },
    )
