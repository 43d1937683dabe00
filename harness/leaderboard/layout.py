"""The frame every site page shares: the document shell, its Content-Security-Policy, and the
sentences that explain the ranks.

Built with ``harness.render.html``: every string from a record is escaped, in text and in
attributes alike; record data never reaches a <script>, a ``style`` attribute or an event
handler. Links are relative, so the site works from file:// and under any path prefix.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.leaderboard.entries import SiteSettings
from harness.render.html import Child, Markup, el, join, raw

# 'self' covers same-folder files on http(s) and, in Chromium, file:// too; no inline script or
# style is ever emitted, so neither 'unsafe-inline' nor hashes are needed.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'"
)
RANK_NOTE = (
    "Ranks are {confidence} rank intervals: “1–3” means the data cannot place the model more "
    "precisely than between ranks 1 and 3 (every pair tested, Holm-adjusted)."
)


def confidence(settings: SiteSettings) -> str:
    """The simultaneous confidence of the rank intervals, e.g. '95%'."""
    return f"{100 * (1 - settings.alpha):g}%"


def rank_note(settings: SiteSettings) -> str:
    return RANK_NOTE.format(confidence=confidence(settings))


def lines(items: Iterable[Child]) -> Markup:
    """Items one per line (the page source stays readable and diffable)."""
    return join(items, "\n")


def block(tag: str, *items: Child, **attrs: object) -> Markup:
    """``<tag>`` with each item on its own line between the tags."""
    return el(tag, "\n", lines(items), "\n", **attrs)


def _head(title: str, *, root: str, settings: SiteSettings) -> Markup:
    return block(
        "head",
        el("meta", charset="utf-8"),
        el("meta", name="viewport", content="width=device-width, initial-scale=1"),
        el("meta", http_equiv="Content-Security-Policy", content=raw(CSP)),
        el("meta", name="referrer", content="no-referrer"),
        el("title", f"{title} · {settings.title}"),
        el("link", rel="icon", href="data:,"),
        el("link", rel="stylesheet", href=f"{root}assets/site.css"),
        el("script", src=f"{root}assets/site.js", defer=True),
    )


def _nav(root: str, settings: SiteSettings) -> Markup:
    return el(
        "header",
        el(
            "nav",
            el("a", settings.title, href=f"{root}index.html"),
            el("a", "Table (JSON)", href=f"{root}data/leaderboard.json"),
            el("a", "Table (CSV)", href=f"{root}data/leaderboard.csv"),
            aria_label="Site",
        ),
    )


def page(title: str, body: Markup, *, root: str, settings: SiteSettings) -> str:
    """A whole document: head, navigation, ``body`` as the main content, footer."""
    document = block(
        "html",
        _head(title, root=root, settings=settings),
        block(
            "body",
            el("a", "Skip to content", cls="skip", href="#main"),
            _nav(root, settings),
            block("main", body, id="main"),
            el("footer", f"Built by harness from verified run records. {rank_note(settings)}"),
        ),
        lang="en",
    )
    return f"<!doctype html>\n{document}\n"
