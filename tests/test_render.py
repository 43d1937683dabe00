"""The shared render stack: escaping, the number formatter's two styles, the tick generator."""

from __future__ import annotations

import math

import pytest

from harness.render.html import Markup, el, empty, esc, join, raw
from harness.render.numbers import MISSING, SITE, SITE_MISSING, fmt, fmt_ci, fmt_site, fmt_svg
from harness.render.svg import line, nice_ticks, short

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


def test_el_escapes_text_and_attributes_but_not_markup() -> None:
    out = el("td", HOSTILE, el("b", "ok"), None, False, cls="x", data_v=HOSTILE, hidden=True)
    assert out.startswith('<td class="x" data-v="&lt;script&gt;')
    assert "<script>" not in out and "<img" not in out
    assert "<b>ok</b>" in out and " hidden>" in out
    assert esc(raw("<i>trusted</i>")) == "<i>trusted</i>"
    assert join(["a<", Markup("<br>"), "b"], " & ") == "a&lt; &amp; <br> &amp; b"


def test_void_and_self_closed_elements() -> None:
    assert el("input", "ignored", type="search") == '<input type="search">'
    assert (
        empty("line", x1="1.0", stroke="currentColor") == '<line x1="1.0" stroke="currentColor"/>'
    )
    assert line(1, 2.5, "3.0", 4, width=None, self_closing=True) == (
        '<line x1="1.00" y1="2.50" x2="3.0" y2="4.00" stroke="#d8dee6"/>'
    )


@pytest.mark.parametrize(
    ("value", "report", "site"),
    [
        (None, MISSING, SITE_MISSING),
        (math.nan, MISSING, SITE_MISSING),
        (math.inf, MISSING, SITE_MISSING),
        (3, "3", "3"),
        (3.0, "3", "3"),
        (0.0, "0", "0"),
        (0.85234, "0.8523", "0.8523"),
        (1234.56, "1234.6", "1235"),
        (123456.0, "123456", "1.23e+05"),
        (0.000123456, "0.0001235", "0.000123"),
        (-0.5, "-0.5", "-0.5"),
    ],
)
def test_one_formatter_two_styles(value: object, report: str, site: str) -> None:
    assert fmt(value) == report
    assert fmt_site(value) == site == fmt(value, style=SITE)


def test_booleans_intervals_and_coordinates() -> None:
    assert fmt(True) == "yes" and fmt(False) == "no"
    assert fmt_ci(0.1, 0.25) == "[0.1, 0.25]" and fmt_ci(None, 0.2) == MISSING
    assert fmt_ci(None, None, style=SITE) == SITE_MISSING
    assert fmt_ci(1e-5, 2e5, style=SITE) == "[1e-05, 2e+05]"
    assert fmt_svg(-0.001) == "0.00" and fmt_svg(2.345) == "2.35"


def test_ticks_covering_the_data() -> None:
    """Report axes: round ticks from at or below ``low`` to at or above ``high``."""
    assert nice_ticks(0.0, 1.0) == [0.0, 0.5, 1.0]
    assert nice_ticks(0.0, 0.93) == [0.0, 0.5, 1.0]
    assert nice_ticks(0.0, 37.0) == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert nice_ticks(-0.3, 0.7) == [-0.5, 0.0, 0.5, 1.0]
    assert nice_ticks(5.0, 5.0) == [5.0, 5.5, 6.0]  # a flat series still gets an axis


def test_ticks_within_a_padded_span() -> None:
    """Site axes: ticks inside [low, high], 2.5 steps allowed, none outside the span."""
    assert nice_ticks(0.7, 0.9, within=True) == [0.7, 0.75, 0.8, 0.85, 0.9]
    assert nice_ticks(-1.0, 11.0, within=True) == [0.0, 2.5, 5.0, 7.5, 10.0]
    ticks = nice_ticks(0.123, 0.987, within=True)
    assert ticks == [0.2, 0.4, 0.6, 0.8] and all(0.123 <= t <= 0.987 for t in ticks)


def test_short_keeps_both_ends() -> None:
    assert short("abcdefghij", 7) == "abc…hij"
    assert short("short", 7) == "short"
