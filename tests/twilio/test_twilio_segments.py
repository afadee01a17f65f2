"""SMS segment counting, GSM-7 versus UCS-2."""

from __future__ import annotations

import pytest

from connectors.twilio.segments import count_segments


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", "GSM-7", 0),
        ("Hello", "GSM-7", 1),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extension characters take two septets
        ("€" * 81, "GSM-7", 2),
        ("a" * 158 + "€", "GSM-7", 1),
        ("a" * 159 + "€", "GSM-7", 2),
        ("Ça coûte 5€ — ok", "UCS-2", 1),  # û and — are outside GSM-7
        ("ą" * 70, "UCS-2", 1),
        ("ą" * 71, "UCS-2", 2),
        ("ą" * 134, "UCS-2", 2),
        ("ą" * 135, "UCS-2", 3),
        ("😀" * 35, "UCS-2", 1),  # each emoji is a surrogate pair: two units
        ("😀" * 36, "UCS-2", 2),
    ],
)
def test_segments_and_encoding(text: str, encoding: str, segments: int) -> None:
    info = count_segments(text)
    assert (info.encoding, info.segments) == (encoding, segments)


def test_escape_sequences_are_not_split_across_parts() -> None:
    # 152 septets then a 2-septet "€": it cannot straddle the 153-septet boundary.
    info = count_segments("a" * 152 + "€" + "a" * 152)
    assert info.units == 306
    assert info.segments == 3


def test_surrogate_pairs_are_not_split_across_parts() -> None:
    info = count_segments("ą" * 66 + "😀" * 34)
    assert info.units == 134  # would fit two 67-unit parts if pairs could be split
    assert info.segments == 3


def test_polish_text_forces_ucs2_and_names_the_culprits() -> None:
    info = count_segments("Dzień dobry, zamówienie")
    assert info.encoding == "UCS-2"
    assert info.non_gsm == ("ń", "ó")
    assert info.remaining == 70 - len("Dzień dobry, zamówienie")


def test_remaining_counts_down_in_the_last_part() -> None:
    assert count_segments("a" * 10).remaining == 150
    assert count_segments("a" * 161).remaining == 153 - 8
    assert count_segments("").as_dict() == {
        "encoding": "GSM-7",
        "segments": 0,
        "units": 0,
        "remaining": 160,
        "non_gsm_characters": [],
    }


def test_gsm_basic_specials_stay_gsm() -> None:
    info = count_segments("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r")
    assert info.encoding == "GSM-7"
    assert info.units == len("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r")
    assert count_segments("[]{}~^|\\€\f").units == 20
