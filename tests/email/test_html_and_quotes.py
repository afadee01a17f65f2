"""HTML sanitising (nh3) and reply folding (mail-parser-reply) on English and Polish mail."""

from __future__ import annotations

import pytest

from connectors.email.quotes import fold_reply
from connectors.html import html_to_text, nesting_depth, sanitize_html, text_to_html

# ------------------------------------------------------------------------------------------------- html


def test_sanitiser_removes_scripts_handlers_dangerous_urls_and_relative_urls():
    dirty = (
        '<p onmouseover="x()">Hi<script>alert(1)</script></p>'
        '<a href="javascript:alert(1)">a</a><a href=" JaVaScRiPt:alert(1)">b</a>'
        '<a href="/api/v1/auth/logout">c</a><img src="//evil.example.net/x.png">'
        '<img src="data:image/svg+xml;base64,PHN2Zz4=">'
        '<form action="https://evil.example.net"><input name="password"></form>'
        '<iframe src="https://evil.example.net"></iframe><object data="x.swf"></object>'
        '<a href="https://ok.example.com/">ok</a><a href="mailto:x@example.com">mail</a>'
    )
    clean = sanitize_html(dirty).html

    for hostile in ("onmouseover", "<script", "javascript", "logout", "evil.example.net", "data:", "<form", "<input"):
        assert hostile not in clean.lower()
    assert '<a href="https://ok.example.com/"' in clean
    assert 'href="mailto:x@example.com"' in clean
    assert 'rel="noopener noreferrer nofollow"' in clean


def test_styles_keep_presentation_but_never_anything_that_loads_a_url():
    clean = sanitize_html(
        '<p style="color: red; background: url(https://t.example.net/p.gif); font-weight: bold; '
        'background-image: url(x); list-style: url(y)">x</p>'
    ).html

    assert "url(" not in clean
    assert "color:red" in clean.replace(" ", "")
    assert "font-weight:bold" in clean.replace(" ", "")


def test_only_the_quote_marker_classes_of_mail_clients_survive_so_the_console_can_fold_them():
    clean = sanitize_html('<div class="gmail_quote evil-overlay">q</div><blockquote type="cite">c</blockquote>').html

    assert '<div class="gmail_quote">' in clean
    assert '<blockquote type="cite">' in clean


def test_cid_images_point_at_served_urls_and_unknown_cids_are_dropped():
    clean = sanitize_html(
        '<img src="cid:logo@x"><img src="cid:missing@x"><a href="cid:logo@x">l</a>',
        cid_url=lambda cid: "/api/v1/email/inline/abc" if cid == "logo@x" else None,
    ).html

    assert clean.count('src="/api/v1/email/inline/abc"') == 1
    assert "cid:" not in clean


def test_remote_images_are_counted_and_can_be_removed_here():
    markup = '<img src="https://t.example.net/open.gif"><img src="http://t.example.net/2.gif">'

    kept = sanitize_html(markup)
    blocked = sanitize_html(markup, block_remote_images=True)

    assert kept.remote_images == 2
    assert "t.example.net" in kept.html
    assert blocked.remote_images == 2
    assert "t.example.net" not in blocked.html


@pytest.mark.timeout(120)
def test_a_hostile_10mb_deeply_nested_body_is_sanitised_as_text_instead_of_taking_minutes():
    # html5ever is quadratic in nesting depth: this would take minutes to parse as HTML.
    hostile = "<div><b><i>" * 950_000 + "<script>alert(1)</script>the end"
    assert len(hostile) > 10_000_000

    result = sanitize_html(hostile)

    assert result.flattened is True
    assert "<script" not in result.html
    assert "the end" in result.html


@pytest.mark.timeout(120)
def test_a_hostile_10mb_flat_body_is_sanitised_in_full():
    hostile = '<p onclick="x()">hi <a href="javascript:x">y</a><img src="https://t.example.net/p.gif"></p>' * 120_000
    assert len(hostile) > 10_000_000

    result = sanitize_html(hostile)

    assert result.flattened is False
    assert "javascript" not in result.html
    assert "onclick" not in result.html
    assert result.remote_images == 120_000


def test_nesting_depth_ignores_elements_that_cannot_nest():
    assert nesting_depth("<p>" * 10_000) == 0
    assert nesting_depth("<li>" * 10_000) == 0
    assert nesting_depth("<div>" * 500) >= 200


def test_html_to_text_renders_blocks_as_lines_and_drops_invisible_content():
    text = html_to_text(
        "<html><head><title>T</title><style>p{}</style></head><body><p>Hello&nbsp;there</p>"
        "<p>Line<br>two</p><!-- secret --><table><tr><td>a</td><td>b</td></tr></table><script>x()</script></body>"
    )
    assert text == "Hello there\n\nLine\ntwo\n\na b"


def test_text_to_html_escapes_and_keeps_paragraphs():
    assert text_to_html("a < b\nline two\n\nnext") == "<p>a &lt; b<br>line two</p>\n<p>next</p>"


# ------------------------------------------------------------------------------------------------ quotes

ENGLISH_GMAIL = """Thanks, got it.

On Mon, Feb 12, 2024 at 10:15 AM Acme Support <support@support.example.com> wrote:
> Hello,
> your parcel is on its way.
"""

ENGLISH_OUTLOOK = """Please cancel the order.

Best regards,
John Smith
Sales Director

From: Acme Support <support@support.example.com>
Sent: Monday, February 12, 2024 10:15 AM
To: John Smith <john@example.com>
Subject: Your order

Hello John,
"""

POLISH_GMAIL = """Dziękuję, paczka dotarła.

Pozdrawiam
Jan Kowalski

W dniu pon., 12 lut 2024 o 10:15 Obsługa Sklepu <support@support.example.com>
napisał(a):

> Dzień dobry,
> paczka została wysłana.
"""

POLISH_THUNDERBIRD = """Dzięki, wszystko jasne!

W dniu 12.02.2024 o 10:15, Obsługa Sklepu pisze:
> Dzień dobry,
> paczka została wysłana.
"""

POLISH_OUTLOOK = """Zgadzam się na zwrot.

Od: Obsługa Sklepu <support@support.example.com>
Wysłano: poniedziałek, 12 lutego 2024 10:15
Do: Jan Kowalski
Temat: Zamówienie nr 5

Dzień dobry,
"""


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        (ENGLISH_GMAIL, "Thanks, got it."),
        (ENGLISH_OUTLOOK, "Please cancel the order."),
        (POLISH_GMAIL, "Dziękuję, paczka dotarła."),
        (POLISH_THUNDERBIRD, "Dzięki, wszystko jasne!"),
        (POLISH_OUTLOOK, "Zgadzam się na zwrot."),
    ],
    ids=["en-gmail", "en-outlook-signature", "pl-gmail-w-dniu", "pl-thunderbird-pisze", "pl-outlook-od"],
)
def test_quoted_history_and_signatures_are_folded_in_english_and_polish(text: str, visible: str):
    folded = fold_reply(text)

    assert folded.folded is True
    assert folded.visible == visible


def test_a_quote_header_in_a_language_the_library_lacks_still_folds_at_the_quote():
    folded = fold_reply(
        'Hello\n02.04.2012 14:20 пользователь "bob@example.com" <\nbob@example.com> написал:\n\n> Hi\n>'
    )

    assert folded.visible == "Hello"


def test_a_message_without_quoted_history_is_not_folded():
    text = "Just a question:\ndo you ship to Norway?"
    assert fold_reply(text).folded is False
    assert fold_reply(text).visible == text


def test_a_message_that_is_only_a_quote_shows_whole():
    text = "On Mon, Feb 12, 2024 at 10:15 AM Support <s@example.com> wrote:\n> Hello"
    assert fold_reply(text).folded is False


@pytest.mark.timeout(60)
def test_folding_a_huge_body_only_scans_its_beginning():
    text = "Hello there. " * 200_000 + "\n\nOn Mon, Feb 12, 2024 Support <s@example.com> wrote:\n> x"
    folded = fold_reply(text)

    assert folded.folded is False
    assert folded.visible == text
