"""SVG primitives shared by every chart: roots, text, lines, the tick generator, colours.

Charts are built with ``html.el`` so every label is escaped. A coordinate given as a number is
written with two decimals (``fmt_svg``), so the same data always gives the same bytes; a caller
that needs another fixed format (the site's one-decimal charts) passes the coordinate as a
string. Colours are attributes rather than CSS so a chart prints the same as it shows and needs
no ``style`` attribute (the site's Content-Security-Policy forbids inline styles).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from harness.render.html import Child, Markup, el, empty
from harness.render.numbers import fmt_svg

INK = "#1d2733"
MUTED = "#6b7785"
GRID = "#d8dee6"
ACCENT = "#2b6cb0"
WARN = "#c0392b"
FONT = 11
XMLNS = "http://www.w3.org/2000/svg"

Coord = float | int | str  # a number (written with two decimals) or text written as given


def _c(value: Coord) -> str:
    return value if isinstance(value, str) else fmt_svg(float(value))


def svg(width: float, height: float, title: str, *body: Markup) -> Markup:
    """A sized, labelled chart root (the report's): ``<title>`` first, ``aria-label`` too."""
    return el(
        "svg",
        el("title", title),
        *body,
        xmlns=XMLNS,
        viewBox=f"0 0 {fmt_svg(width)} {fmt_svg(height)}",
        width=fmt_svg(width),
        height=fmt_svg(height),
        role="img",
        aria_label=title,
        cls="chart",
    )


def described_svg(
    chart_id: str, view_box: str, title: str, desc: str, body: Iterable[Markup]
) -> Markup:
    """A scalable chart root (the site's) labelled by its ``<title>`` and ``<desc>`` ids."""
    return el(
        "svg",
        el("title", title, id=f"{chart_id}-t"),
        el("desc", desc, id=f"{chart_id}-d"),
        *body,
        cls="chart",
        viewBox=view_box,
        role="img",
        aria_labelledby=f"{chart_id}-t {chart_id}-d",
        xmlns=XMLNS,
    )


def text(
    x: Coord,
    y: Coord,
    content: Child,
    *,
    anchor: str | None = "start",
    size: int = FONT,
    fill: str = INK,
    weight: str | None = None,
    transform: str | None = None,
) -> Markup:
    """``<text>`` at (x, y); ``content`` may hold a ``<title>`` (the full text of a short label)."""
    return el(
        "text",
        content,
        x=_c(x),
        y=_c(y),
        text_anchor=anchor,
        font_size=str(size),
        fill=fill,
        font_weight=weight,
        transform=transform,
    )


def vertical_label(label: str, y: float, *, x: float = 12.0) -> Markup:
    """A y-axis title rotated to read bottom-up, centred on ``y``."""
    return el(
        "text",
        label,
        x=x,
        y=y,
        font_size=str(FONT),
        fill=MUTED,
        text_anchor="middle",
        transform=f"rotate(-90 {x:g} {fmt_svg(y)})",
    )


def _stroked(
    tag: str, self_closing: bool, stroke: str, width: str | None, dash: str | None, **attrs: object
) -> Markup:
    """An element drawn by its stroke; the site writes these self-closed, the report does not."""
    attrs.update(stroke=stroke, stroke_width=width, stroke_dasharray=dash)
    return empty(tag, **attrs) if self_closing else el(tag, **attrs)


def line(
    x1: Coord,
    y1: Coord,
    x2: Coord,
    y2: Coord,
    *,
    stroke: str = GRID,
    width: float | str | None = 1.0,
    dash: str | None = None,
    cls: str | None = None,
    self_closing: bool = False,
) -> Markup:
    """A line; ``width`` None leaves the stroke width to the renderer's default (1)."""
    shown = width if width is None or isinstance(width, str) else fmt_svg(width)
    ends = {"x1": _c(x1), "y1": _c(y1), "x2": _c(x2), "y2": _c(y2)}
    return _stroked("line", self_closing, stroke, shown, dash, cls=cls, **ends)


def polyline(
    points: str,
    *,
    stroke: str,
    width: str = "2",
    dash: str | None = None,
    cls: str | None = None,
    self_closing: bool = False,
) -> Markup:
    """An unfilled polyline through ``points`` ("x,y x,y ...")."""
    return _stroked(
        "polyline", self_closing, stroke, width, dash, cls=cls, points=points, fill="none"
    )


def short(label: str, limit: int = 30) -> str:
    """Shorten in the middle: both the start and the (often telling) end of a name stay."""
    if len(label) <= limit:
        return label
    head = (limit - 1) // 2
    return label[:head] + "…" + label[-(limit - 1 - head) :]


# ------------------------------------------------------------------ ticks


def _nice_step(raw_step: float, multiples: tuple[float, ...]) -> float:
    power: float = 10 ** math.floor(math.log10(raw_step))  # an int for steps >= 1, as before
    return next(m * power for m in multiples if m * power >= raw_step)


def _run(start: float, stop: float, step: float) -> tuple[list[float], float]:
    """Ticks start, start + step, ... up to ``stop``, and the next value after the last."""
    ticks = []
    value = start
    while value <= stop:
        ticks.append(round(value, 12))
        value += step
    return ticks, value


def nice_ticks(low: float, high: float, count: int = 5, *, within: bool = False) -> list[float]:
    """Round tick values on 1, 2 or 5 × 10^k steps.

    By default the ticks cover [low, high] (the first at or below ``low``, the last at or above
    ``high``): the axis is the ticks' span (report charts). With ``within`` they lie inside
    [low, high], about ``count`` intervals apart, 2.5 steps allowed: the axis is a padded span
    of the data and the ticks only mark it (site charts).
    """
    if within:
        step = _nice_step((high - low) / count, (1, 2, 2.5, 5, 10))
        return _run(math.ceil(low / step) * step, high + 1e-12, step)[0]
    if not high > low:
        high = low + 1.0
    step = _nice_step((high - low) / max(count - 1, 1), (1, 2, 5, 10))
    ticks, after = _run(math.floor(low / step) * step, high + step * 1e-9, step)
    if ticks[-1] < high:
        ticks.append(round(after, 12))
    return ticks
