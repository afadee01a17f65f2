"""Fold quoted history and signatures out of a reply, for display; the full text is always kept.

mail-parser-reply does the work. Its Polish rules know "Dnia … napisał(a):" but not the headers Polish
Gmail ("W dniu pon., 12 lut 2024 o 10:15 Jan <jan@x.pl> napisał(a):") and Thunderbird ("W dniu
12.02.2024 o 10:15, Jan pisze:") write, so ``_Reply`` extends that one pattern.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from mailparser_reply.constants import MAIL_LANGUAGES, QUOTED_MATCH_INCLUDE
from mailparser_reply.parser import EmailMessage

# Languages whose reply headers and signatures are recognised (English is always included). Each one adds
# ~0.15 ms per message to the library's patterns, so the default is the languages the mailbox speaks
# (EMAIL_REPLY_LANGUAGES); quotes in others still fold at the ">" block and the line introducing it.
DEFAULT_LANGUAGES = ("en", "pl")
# Quoted history sits near the top of a reply; scanning more only costs time on huge bodies.
MAX_SCAN_CHARS = 32 * 1024

_POLISH_HEADER = (
    r"^(" + QUOTED_MATCH_INCLUDE + r"(?:W\s+dniu|Dnia)\s(?:.+?\s?.+?)\s?(?:napisał\(a\)|napisała|napisał|pisze):)$"
)
_QUOTED_LINE_RE = re.compile(r"^\s*>")
_INTRO_LINE_RE = re.compile(r"@|\d{1,2}[./:]\d{2}")


class _Reply(EmailMessage):
    def _get_language_regex(self, language: str, regex_key: str) -> str:
        pattern = super()._get_language_regex(language, regex_key)
        if language == "pl" and regex_key == "wrote_header":
            return f"{_POLISH_HEADER}|{pattern}" if pattern else _POLISH_HEADER
        return pattern


def known_languages(languages: tuple[str, ...]) -> tuple[str, ...]:
    """Return the languages the library has rules for, English first."""
    wanted = ("en", *(lang.strip().lower() for lang in languages))
    return tuple(dict.fromkeys(lang for lang in wanted if lang in MAIL_LANGUAGES))


@functools.lru_cache(maxsize=16)
def _compiled(languages: tuple[str, ...]) -> dict[str, re.Pattern[str]]:
    """Compile the library's (large) patterns once per process instead of once per message."""
    probe = _Reply(text="", languages=list(languages))
    return {
        "_header_regex": probe.HEADER_REGEX,
        "_signature_regex": probe.SIGNATURE_REGEX,
        "_disclaimers_regex": probe.DISCLAIMERS_REGEX,
    }


@dataclass(slots=True)
class FoldedReply:
    visible: str
    folded: bool


def fold_reply(text: str, languages: tuple[str, ...] = DEFAULT_LANGUAGES) -> FoldedReply:
    """Return the new part of a reply (without quoted history and signature) and whether anything was cut."""
    if not text.strip():
        return FoldedReply(text, False)
    head, tail = text[:MAX_SCAN_CHARS], text[MAX_SCAN_CHARS:]
    known = known_languages(languages)
    try:
        parsed = _Reply(text=head, languages=list(known), **_compiled(known)).read()
    except Exception:  # folding is cosmetic; a library bug must never lose a message
        return FoldedReply(text, False)
    if not parsed.replies or (tail and len(parsed.replies) == 1) or parsed.replies[0].headers:
        # No reply header found in the scanned part, or the text starts with one (nothing new on top).
        return FoldedReply(text, False)
    visible = _strip_trailing_quote(parsed.replies[0].body)
    if not visible:
        # Nothing new on top (a bare forward, an all-quoted message): show everything rather than nothing.
        return FoldedReply(text, False)
    return FoldedReply(visible, _normalized(visible) != _normalized(text))


def _strip_trailing_quote(body: str) -> str:
    """Drop a trailing block of ``>`` lines the library leaves when it knows no header for the language.

    The line introducing the quote ("02.04.2012 14:20 Jan <jan@x.pl> написал:") ends with a colon and
    names a date or an address whatever the language; it goes too (it may wrap onto a second line).
    """
    lines = body.rstrip().split("\n")
    end = len(lines)
    while end > 0 and (_QUOTED_LINE_RE.match(lines[end - 1]) or not lines[end - 1].strip()):
        end -= 1
    if 0 < end < len(lines) and lines[end - 1].rstrip().endswith(":"):
        start = end
        while start > 0 and end - start < 3 and _INTRO_LINE_RE.search(lines[start - 1]):
            start -= 1
        if 0 < start < end:
            end = start
    return "\n".join(lines[:end]).strip()


def _normalized(value: str) -> str:
    return "\n".join(line.strip() for line in value.replace("\r\n", "\n").strip().split("\n"))
