"""The site's charts: a scatter plot (optionally with a Pareto front) and an interval chart.

Plain markup with presentation attributes only (no ``style`` attribute, no script), so they
pass a CSP without 'unsafe-inline'. Each chart carries a <title> and <desc> for screen readers;
the numbers are also in the tables. Coordinates have one decimal (site style), so they are
passed to the primitives as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.render.html import Markup, el
from harness.render.numbers import fmt_fixed, fmt_site
from harness.render.svg import described_svg, line, nice_ticks, polyline, text

W, H = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 64, 20, 36, 52
CURRENT = "currentColor"  # ink follows the page's text colour (light and dark themes)
FRONT = "#b45309"
POINT = "#1d4ed8"
WHISKER = "#64748b"
ZERO = "#94a3b8"


@dataclass(frozen=True)
class Point:
    label: str
    x: float
    y: float
    x_ci: tuple[float, float] | None = None
    y_ci: tuple[float, float] | None = None


@dataclass(frozen=True)
class Interval:
    label: str
    value: float
    low: float | None
    high: float | None


def _d(value: float) -> str:
    return fmt_fixed(value, 1)


def _rule(
    x1: str,
    y1: str,
    x2: str,
    y2: str,
    *,
    stroke: str = CURRENT,
    width: str | None = None,
    dash: str | None = None,
    cls: str | None = None,
) -> Markup:
    """A self-closed line, by default at the renderer's width (how the site's charts draw)."""
    return line(x1, y1, x2, y2, stroke=stroke, width=width, dash=dash, cls=cls, self_closing=True)


def _label(
    x: str, y: str, content: str, *, anchor: str | None = "middle", size: int = 11
) -> Markup:
    return text(x, y, content, anchor=anchor, size=size, fill=CURRENT)


def _span(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if lo == hi:
        pad = abs(lo) * 0.05 or 0.5
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.06
    return lo - pad, hi + pad


class _Frame:
    """Data -> pixel for a full-size chart, and its axes with ticks and titles."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float]) -> None:
        self.x0, self.x1 = _span(xs)
        self.y0, self.y1 = _span(ys)

    def px(self, x: float) -> float:
        return LEFT + (x - self.x0) / (self.x1 - self.x0) * (W - LEFT - RIGHT)

    def py(self, y: float) -> float:
        return H - BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (H - TOP - BOTTOM)

    def axes(self, x_label: str, y_label: str) -> list[Markup]:
        base, left = str(H - BOTTOM), str(LEFT)
        parts = [
            _rule(left, base, str(W - RIGHT), base, cls="axis"),
            _rule(left, str(TOP), left, base, cls="axis"),
        ]
        for t in nice_ticks(self.x0, self.x1, within=True):
            x = _d(self.px(t))
            parts.append(_rule(x, base, x, str(H - BOTTOM + 5)))
            parts.append(_label(x, str(H - BOTTOM + 18), fmt_site(t)))
        for t in nice_ticks(self.y0, self.y1, within=True):
            y = _d(self.py(t))
            parts.append(_rule(str(LEFT - 5), y, left, y))
            parts.append(_label(str(LEFT - 8), _d(self.py(t) + 4), fmt_site(t), anchor="end"))
        parts.append(_label(_d((LEFT + W - RIGHT) / 2), str(H - 12), x_label, size=12))
        mid = _d((TOP + H - BOTTOM) / 2)
        rotate = f"rotate(-90 16 {mid})"
        parts.append(
            text("16", mid, y_label, size=12, fill=CURRENT, transform=rotate, anchor="middle")
        )
        return parts


def _point(
    frame: _Frame, p: Point, *, on_front: bool, labelled: bool, x_label: str, y_label: str
) -> list[Markup]:
    """One point: its interval whiskers, the dot with a tooltip, and its name if labelled."""
    cx, cy = frame.px(p.x), frame.py(p.y)
    parts = []
    if p.x_ci:
        x_lo, x_hi = _d(frame.px(p.x_ci[0])), _d(frame.px(p.x_ci[1]))
        parts.append(_rule(x_lo, _d(cy), x_hi, _d(cy), stroke=WHISKER))
    if p.y_ci:
        y_lo, y_hi = _d(frame.py(p.y_ci[0])), _d(frame.py(p.y_ci[1]))
        parts.append(_rule(_d(cx), y_lo, _d(cx), y_hi, stroke=WHISKER))
    tip = f"{p.label}: {x_label} {fmt_site(p.x)}, {y_label} {fmt_site(p.y)}" + (
        " (Pareto front)" if on_front else ""
    )
    fill = FRONT if on_front else POINT
    parts.append(el("circle", el("title", tip), cx=_d(cx), cy=_d(cy), r="5", fill=fill))
    if labelled:
        parts.append(_label(_d(cx + 8), _d(cy - 6), p.label[:32], anchor=None))
    return parts


def scatter(
    chart_id: str,
    points: Sequence[Point],
    *,
    title: str,
    x_label: str,
    y_label: str,
    front: Sequence[int] = (),
    label_limit: int = 12,
) -> Markup:
    """Points with optional CI whiskers; indices in ``front`` are joined by the Pareto line."""
    if not points:
        return Markup("")
    xs = [p.x for p in points] + [v for p in points if p.x_ci for v in p.x_ci]
    ys = [p.y for p in points] + [v for p in points if p.y_ci for v in p.y_ci]
    frame = _Frame(xs, ys)
    desc = f"{len(points)} models; x: {x_label}; y: {y_label}"
    if front:
        desc += f"; Pareto front: {', '.join(points[i].label for i in front)}"
    parts = frame.axes(x_label, y_label)
    if len(front) > 1:
        chain = sorted(front, key=lambda i: (points[i].x, points[i].y))
        coords = " ".join(f"{_d(frame.px(points[i].x))},{_d(frame.py(points[i].y))}" for i in chain)
        parts.append(polyline(coords, stroke=FRONT, dash="6 4", cls="front", self_closing=True))
    on_front = set(front)
    labelled = len(points) <= label_limit
    for i, p in enumerate(points):
        parts += _point(
            frame, p, on_front=i in on_front, labelled=labelled, x_label=x_label, y_label=y_label
        )
    return described_svg(chart_id, f"0 0 {W} {H}", title, desc, parts)


def intervals(chart_id: str, rows: Sequence[Interval], *, title: str, x_label: str) -> Markup:
    """One row per item: a dot at the value and a whisker over its interval; a zero line."""
    if not rows:
        return Markup("")
    height = TOP + BOTTOM + 22 * len(rows)
    values = (
        [r.value for r in rows]
        + [v for r in rows for v in (r.low, r.high) if v is not None]
        + [0.0]
    )
    x0, x1 = _span(values)
    label_w = 200

    def px(x: float) -> str:
        return _d(label_w + (x - x0) / (x1 - x0) * (W - label_w - RIGHT))

    parts = [_rule(px(0), str(TOP - 8), px(0), str(height - BOTTOM + 4), stroke=ZERO, dash="3 3")]
    for t in nice_ticks(x0, x1, within=True):
        parts.append(_label(px(t), str(height - BOTTOM + 20), fmt_site(t)))
    parts.append(_label(_d((label_w + W) / 2), str(height - 12), x_label, size=12))
    for n, r in enumerate(rows):
        y = str(TOP + 11 + 22 * n)
        parts.append(_label(str(label_w - 8), str(TOP + 15 + 22 * n), r.label[:34], anchor="end"))
        if r.low is not None and r.high is not None:
            parts.append(_rule(px(r.low), y, px(r.high), y, stroke=WHISKER, width="2"))
        tip = f"{r.label}: {fmt_site(r.value)} [{fmt_site(r.low)}, {fmt_site(r.high)}]"
        parts.append(el("circle", el("title", tip), cx=px(r.value), cy=y, r="4.5", fill=POINT))
    return described_svg(
        chart_id, f"0 0 {W} {height}", title, f"{len(rows)} intervals of {x_label}", parts
    )
