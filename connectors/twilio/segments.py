"""SMS segment counting: how many parts a text is billed and delivered as, in GSM-7 or UCS-2.

GSM 03.38 packs 160 septets into one SMS, or 153 per part once a User Data Header joins parts; characters of
the extension table cost two septets (an escape plus the character) and are never split across parts. Any
character outside both tables switches the whole message to UCS-2: 70 UTF-16 code units, or 67 per part, and
a surrogate pair (emoji) is never split either. This mirrors what carriers and Twilio do without Smart
Encoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """How a text would travel as SMS."""

    encoding: str  # "GSM-7" | "UCS-2"
    segments: int
    # Septets (GSM-7) or UTF-16 code units (UCS-2) the text occupies.
    units: int
    # Units still free in the last segment before another one is needed.
    remaining: int
    # The characters that forced UCS-2, in order of first appearance (empty for GSM-7).
    non_gsm: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, object]:
        return {
            "encoding": self.encoding,
            "segments": self.segments,
            "units": self.units,
            "remaining": self.remaining,
            "non_gsm_characters": list(self.non_gsm),
        }


def _pack(sizes: list[int], single: int, multi: int) -> tuple[int, int]:
    """Return (segments, free units in the last one) for indivisible items of the given sizes."""
    total = sum(sizes)
    if total == 0:
        return 0, single
    if total <= single:
        return 1, single - total
    segments, used = 1, 0
    for size in sizes:
        if used + size > multi:
            segments += 1
            used = 0
        used += size
    return segments, multi - used


def count_segments(text: str) -> SegmentInfo:
    """Return the encoding, segment count and free space for ``text`` sent as one SMS."""
    non_gsm = [ch for ch in dict.fromkeys(text) if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION]
    if not non_gsm:
        sizes = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        segments, remaining = _pack(sizes, GSM7_SINGLE, GSM7_MULTI)
        return SegmentInfo("GSM-7", segments, sum(sizes), remaining)
    sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    segments, remaining = _pack(sizes, UCS2_SINGLE, UCS2_MULTI)
    return SegmentInfo("UCS-2", segments, sum(sizes), remaining, tuple(non_gsm))
