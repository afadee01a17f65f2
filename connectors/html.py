"""HTML from customers (mail, forms, api pushes), made safe to show agents: nh3, remote images counted, cid: rewritten.

nh3 (ammonia, html5ever) is linear in the input except in nesting depth: each start tag scans the stack of
open elements, so 500,000 nested ``<div>`` take minutes. ``sanitize_html`` measures the depth first with a
linear scan and renders absurdly nested bodies as plain text instead, which keeps a hostile 10 MB body to
about a second.
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import nh3

TAGS = set(nh3.ALLOWED_TAGS) | {"font", "tfoot", "center"}
ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": {"title", "lang", "dir", "style"},
    "img": {"src", "alt", "width", "height", "align", "border"},
    "a": {"href", "hreflang", "name"},
    "td": {"align", "valign", "colspan", "rowspan", "width", "height", "bgcolor"},
    "th": {"align", "valign", "colspan", "rowspan", "width", "height", "bgcolor", "scope"},
    "table": {"align", "width", "border", "cellpadding", "cellspacing", "bgcolor", "summary"},
    "tr": {"align", "valign", "bgcolor"},
    "font": {"color", "size", "face"},
    "blockquote": {"cite", "type"},
}
# Only the classes mail clients put on quoted history survive, so the console can fold it.
QUOTE_CLASSES: dict[str, set[str]] = {
    "div": {
        "gmail_quote",
        "gmail_extra",
        "moz-cite-prefix",
        "yahoo_quoted",
        "OutlookMessageHeader",
        "protonmail_quote",
    },
    "blockquote": {"gmail_quote"},
}
# Presentational properties only: none of them can load a URL (no background, list-style-image, content…).
STYLE_PROPERTIES = {
    "color",
    "background-color",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "text-align",
    "text-decoration",
    "vertical-align",
    "white-space",
    "width",
    "height",
    "max-width",
    "border",
    "border-collapse",
    "padding",
    "padding-left",
    "padding-right",
    "padding-top",
    "padding-bottom",
    "margin",
    "margin-left",
    "margin-right",
    "margin-top",
    "margin-bottom",
    "line-height",
    "display",
}
URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}
REMOTE_SCHEMES = {"http", "https"}
URL_ATTRIBUTES = {"href", "src", "cite"}
MAX_DEPTH = 200

# Elements whose start tag closes a sibling of the same kind instead of nesting, and void elements.
_NON_NESTING = {
    "p",
    "li",
    "dt",
    "dd",
    "tr",
    "td",
    "th",
    "tbody",
    "thead",
    "tfoot",
    "option",
    "optgroup",
    "colgroup",
    "rb",
    "rt",
    "rp",
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "param",
    "source",
    "track",
    "wbr",
    "html",
    "head",
    "body",
}
# [^<>] (not [^>]) keeps every scan between two "<", so unclosed tags cannot make matching quadratic.
_TAG_RE = re.compile(rb"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)[^<>]*?(/?)>")


@dataclass(slots=True)
class SanitizedHtml:
    html: str
    remote_images: int = 0
    # Set when the body was too deeply nested to parse safely and was rendered as text instead.
    flattened: bool = False


def nesting_depth(markup: str, limit: int = MAX_DEPTH) -> int:
    """Estimate how deep ``markup`` nests (stops counting at ``limit``); linear in its length."""
    if markup.count("<") <= limit:
        return 0
    depth = 0
    data = markup.encode("utf-8", errors="replace")
    for match in _TAG_RE.finditer(data):
        closing, name, selfclosing = match.groups()
        tag = name.decode("ascii").lower()
        if tag in _NON_NESTING or selfclosing:
            continue
        if closing:
            depth = max(depth - 1, 0)
        else:
            depth += 1
            if depth >= limit:
                return depth
    return depth


def sanitize_html(
    markup: str,
    *,
    cid_url: Callable[[str], str | None] | None = None,
    block_remote_images: bool = False,
) -> SanitizedHtml:
    """Return ``markup`` safe to embed in the console; ``cid_url`` maps a Content-ID to a served URL.

    Remote images are counted (``remote_images``) and kept for the console, which shows them only when the
    agent asks for that message; ``block_remote_images`` removes them here instead.
    """
    if nesting_depth(markup) >= MAX_DEPTH:
        return SanitizedHtml(text_to_html(html_to_text(markup)), flattened=True)
    remote = 0

    def filter_attribute(tag: str, attribute: str, value: str) -> str | None:
        nonlocal remote
        if attribute not in URL_ATTRIBUTES:
            return value
        scheme = urlsplit(value.strip()).scheme.lower()
        if not scheme:
            # Relative URLs would resolve against the console's own origin and carry the agent's cookies.
            return None
        if scheme == "cid":
            if tag != "img" or cid_url is None:
                return None
            return cid_url(value.strip()[4:])
        if tag == "img" and scheme in REMOTE_SCHEMES:
            # Remote images tell the sender when and where the mail was read.
            remote += 1
            if block_remote_images:
                return None
        return value

    cleaned = nh3.clean(
        markup,
        tags=TAGS,
        clean_content_tags={"script", "style", "title", "head", "template", "noscript", "iframe", "object"},
        attributes=ATTRIBUTES,
        attribute_filter=filter_attribute,
        url_schemes=URL_SCHEMES,
        url_relative="pass_through",
        allowed_classes=QUOTE_CLASSES,
        filter_style_properties=STYLE_PROPERTIES,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )
    return SanitizedHtml(cleaned.strip(), remote_images=remote)


def _cut_blocks(markup: str, pairs: tuple[tuple[str, str], ...]) -> str:
    """Remove every ``start…end`` block (``end`` missing: to the end) in one linear pass.

    A lazy regex such as ``<style.*?</style>`` rescans to the end for every unclosed start: quadratic.
    """
    lower = markup.lower()
    nexts = {start: lower.find(start) for start, _ in pairs}
    ends = dict(pairs)
    out: list[str] = []
    pos = 0
    while True:
        live = [(index, start) for start, index in nexts.items() if index >= 0]
        if not live:
            out.append(markup[pos:])
            break
        index, start = min(live)
        out.append(markup[pos:index])
        end = lower.find(ends[start], index + len(start))
        if end < 0:
            break
        pos = end + len(ends[start])
        for other, found in nexts.items():
            if 0 <= found < pos:
                nexts[other] = lower.find(other, pos)
    return "".join(out)


_BLOCK_TAG_RE = re.compile(
    r"</?(?:p|div|br|tr|li|h[1-6]|blockquote|pre|table|ul|ol|hr|dt|dd|section|article|header|footer|address|center)"
    r"(?=[\s/>])[^<>]*>",
    re.IGNORECASE,
)
_CELL_TAG_RE = re.compile(r"<t[dh](?=[\s/>])[^<>]*>", re.IGNORECASE)
_ANY_TAG_RE = re.compile(r"</?[a-zA-Z][^<>]*>")
_SPACES_RE = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES_RE = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_INVISIBLE = (
    ("<!--", "-->"),
    ("<script", "</script>"),
    ("<style", "</style>"),
    ("<head", "</head>"),
    ("<title", "</title>"),
)


def html_to_text(markup: str) -> str:
    """Render HTML as readable plain text (block elements become line breaks); linear time."""
    markup = _cut_blocks(markup, _INVISIBLE)
    text = markup.replace("\r\n", " ").replace("\n", " ")
    # Two substitutions without a Python callback: several times faster on tag-heavy bodies.
    text = _ANY_TAG_RE.sub("", _CELL_TAG_RE.sub(" ", _BLOCK_TAG_RE.sub("\n", text)))
    text = htmllib.unescape(text)
    lines = [_SPACES_RE.sub(" ", line).strip() for line in text.split("\n")]
    text = "\n".join(lines)
    return _BLANK_LINES_RE.sub("\n\n", text).strip()


def text_to_html(text: str) -> str:
    """Render plain text as simple HTML paragraphs (for the HTML part of outbound mail)."""
    paragraphs = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())
    return "\n".join(f"<p>{htmllib.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs if p.strip())
