"""The one number formatter: how every page of harness writes a number or a missing value.

Two styles share the code. The report's (``REPORT``) writes integers as integers, large values
with one decimal and the rest with four significant figures. The site's (``SITE``) is compact
for narrow table cells: values outside [0.001, 100000) get three significant figures in
scientific notation. A missing value (None, and NaN/inf, which records store as null) is one
dash per style: the report's em dash ``MISSING``; the site keeps its en dash ``SITE_MISSING``
because its pages must stay byte-identical (unifying the glyph is one constant change here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeGuard

MISSING = "—"  # the house's mark for a value that is not there (em dash)
SITE_MISSING = "–"  # the leaderboard's mark (en dash), kept so its pages do not change


@dataclass(frozen=True)
class NumberStyle:
    """How one kind of page writes numbers."""

    missing: str
    compact: bool  # scientific notation outside [1e-3, 1e5) instead of fixed large values


REPORT = NumberStyle(missing=MISSING, compact=False)
SITE = NumberStyle(missing=SITE_MISSING, compact=True)


def is_number(value: object) -> TypeGuard[float]:
    """A finite int or float that is not a bool (what a chart can place on an axis)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt(value: object, digits: int = 4, *, style: NumberStyle = REPORT) -> str:
    """A human number: integers as integers, others with ``digits`` significant figures."""
    if value is None:
        return style.missing
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and not math.isfinite(value):
        return style.missing
    if style.compact and isinstance(value, (int, float)):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.{digits}g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e12:
            return str(int(value))
        if abs(value) >= 1000:
            return f"{value:.1f}"
        return f"{value:.{digits}g}"
    return str(value)


def fmt_site(value: object, digits: int = 4) -> str:
    """``fmt`` in the leaderboard site's style."""
    return fmt(value, digits, style=SITE)


def fmt_ci(low: float | None, high: float | None, *, style: NumberStyle = REPORT) -> str:
    """``[low, high]``, or the missing mark when either end is absent."""
    if low is None or high is None:
        return style.missing
    return f"[{fmt(low, style=style)}, {fmt(high, style=style)}]"


def fmt_svg(value: float) -> str:
    """Coordinates with two decimals and no negative zero: stable bytes across platforms."""
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


def fmt_fixed(value: float, places: int = 1) -> str:
    """A fixed number of decimals (site coordinates, win rates, seconds)."""
    return f"{value:.{places}f}"
