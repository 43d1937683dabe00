"""Inline SVG charts: a scatter plot (optionally with a Pareto front) and an interval chart.

Charts are plain markup with presentation attributes only — no ``style`` attributes and no
script — so they pass a CSP without 'unsafe-inline'. Every label goes through ``esc``.
Each chart carries a <title> and <desc> for screen readers; the numbers are also in the tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

W, H = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 64, 20, 36, 52


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:.{digits}g}"


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


def _span(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if lo == hi:
        pad = abs(lo) * 0.05 or 0.5
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.06
    return lo - pad, hi + pad


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    out = []
    v = start
    while v <= hi + 1e-12:
        out.append(round(v, 12))
        v += step
    return out


class _Frame:
    def __init__(self, xs: Sequence[float], ys: Sequence[float]) -> None:
        self.x0, self.x1 = _span(xs)
        self.y0, self.y1 = _span(ys)

    def px(self, x: float) -> float:
        return LEFT + (x - self.x0) / (self.x1 - self.x0) * (W - LEFT - RIGHT)

    def py(self, y: float) -> float:
        return H - BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (H - TOP - BOTTOM)

    def axes(self, x_label: str, y_label: str) -> list[str]:
        parts = [
            f'<line class="axis" x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" stroke="currentColor"/>',
            f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}" stroke="currentColor"/>',
        ]
        for t in _ticks(self.x0, self.x1):
            x = self.px(t)
            parts.append(
                f'<line x1="{x:.1f}" y1="{H - BOTTOM}" x2="{x:.1f}" y2="{H - BOTTOM + 5}" stroke="currentColor"/>'
            )
            parts.append(
                f'<text x="{x:.1f}" y="{H - BOTTOM + 18}" text-anchor="middle" font-size="11" fill="currentColor">{esc(fmt(t))}</text>'
            )
        for t in _ticks(self.y0, self.y1):
            y = self.py(t)
            parts.append(
                f'<line x1="{LEFT - 5}" y1="{y:.1f}" x2="{LEFT}" y2="{y:.1f}" stroke="currentColor"/>'
            )
            parts.append(
                f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="currentColor">{esc(fmt(t))}</text>'
            )
        parts.append(
            f'<text x="{(LEFT + W - RIGHT) / 2:.1f}" y="{H - 12}" text-anchor="middle" font-size="12" fill="currentColor">{esc(x_label)}</text>'
        )
        parts.append(
            f'<text x="16" y="{(TOP + H - BOTTOM) / 2:.1f}" text-anchor="middle" font-size="12" fill="currentColor" '
            f'transform="rotate(-90 16 {(TOP + H - BOTTOM) / 2:.1f})">{esc(y_label)}</text>'
        )
        return parts


def _open(chart_id: str, title: str, desc: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="{chart_id}-t">{esc(title)}</title>'
        f'<desc id="{chart_id}-d">{esc(desc)}</desc>'
    )


def scatter(
    chart_id: str,
    points: Sequence[Point],
    *,
    title: str,
    x_label: str,
    y_label: str,
    front: Sequence[int] = (),
    label_limit: int = 12,
) -> str:
    """Points with optional CI whiskers; indices in ``front`` are joined by the Pareto line."""
    if not points:
        return ""
    xs = [p.x for p in points] + [v for p in points if p.x_ci for v in p.x_ci]
    ys = [p.y for p in points] + [v for p in points if p.y_ci for v in p.y_ci]
    frame = _Frame(xs, ys)
    desc = f"{len(points)} models; x: {x_label}; y: {y_label}"
    if front:
        desc += f"; Pareto front: {', '.join(points[i].label for i in front)}"
    parts = [_open(chart_id, title, desc), *frame.axes(x_label, y_label)]
    if len(front) > 1:
        chain = sorted(front, key=lambda i: (points[i].x, points[i].y))
        coords = " ".join(f"{frame.px(points[i].x):.1f},{frame.py(points[i].y):.1f}" for i in chain)
        parts.append(
            f'<polyline class="front" points="{coords}" fill="none" stroke="#b45309" stroke-width="2" stroke-dasharray="6 4"/>'
        )
    on_front = set(front)
    for i, p in enumerate(points):
        cx, cy = frame.px(p.x), frame.py(p.y)
        if p.x_ci:
            parts.append(
                f'<line x1="{frame.px(p.x_ci[0]):.1f}" y1="{cy:.1f}" x2="{frame.px(p.x_ci[1]):.1f}" y2="{cy:.1f}" stroke="#64748b"/>'
            )
        if p.y_ci:
            parts.append(
                f'<line x1="{cx:.1f}" y1="{frame.py(p.y_ci[0]):.1f}" x2="{cx:.1f}" y2="{frame.py(p.y_ci[1]):.1f}" stroke="#64748b"/>'
            )
        fill = "#b45309" if i in on_front else "#1d4ed8"
        tip = f"{p.label}: {x_label} {fmt(p.x)}, {y_label} {fmt(p.y)}" + (
            " (Pareto front)" if i in on_front else ""
        )
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{fill}"><title>{esc(tip)}</title></circle>'
        )
        if len(points) <= label_limit:
            parts.append(
                f'<text x="{cx + 8:.1f}" y="{cy - 6:.1f}" font-size="11" fill="currentColor">{esc(p.label[:32])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def intervals(chart_id: str, rows: Sequence[Interval], *, title: str, x_label: str) -> str:
    """One row per item: a dot at the value and a whisker over its interval; a zero line."""
    if not rows:
        return ""
    height = TOP + BOTTOM + 22 * len(rows)
    values = (
        [r.value for r in rows]
        + [v for r in rows for v in (r.low, r.high) if v is not None]
        + [0.0]
    )
    x0, x1 = _span(values)
    label_w = 200

    def px(x: float) -> float:
        return label_w + (x - x0) / (x1 - x0) * (W - label_w - RIGHT)

    desc = f"{len(rows)} intervals of {x_label}"
    parts = [
        f'<svg class="chart" viewBox="0 0 {W} {height}" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="{chart_id}-t">{esc(title)}</title><desc id="{chart_id}-d">{esc(desc)}</desc>',
        f'<line x1="{px(0):.1f}" y1="{TOP - 8}" x2="{px(0):.1f}" y2="{height - BOTTOM + 4}" stroke="#94a3b8" stroke-dasharray="3 3"/>',
    ]
    for t in _ticks(x0, x1):
        parts.append(
            f'<text x="{px(t):.1f}" y="{height - BOTTOM + 20}" text-anchor="middle" font-size="11" fill="currentColor">{esc(fmt(t))}</text>'
        )
    parts.append(
        f'<text x="{(label_w + W) / 2:.1f}" y="{height - 12}" text-anchor="middle" font-size="12" fill="currentColor">{esc(x_label)}</text>'
    )
    for n, r in enumerate(rows):
        y = TOP + 11 + 22 * n
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 4}" text-anchor="end" font-size="11" fill="currentColor">{esc(r.label[:34])}</text>'
        )
        if r.low is not None and r.high is not None:
            parts.append(
                f'<line x1="{px(r.low):.1f}" y1="{y}" x2="{px(r.high):.1f}" y2="{y}" stroke="#64748b" stroke-width="2"/>'
            )
        tip = f"{r.label}: {fmt(r.value)} [{fmt(r.low)}, {fmt(r.high)}]"
        parts.append(
            f'<circle cx="{px(r.value):.1f}" cy="{y}" r="4.5" fill="#1d4ed8"><title>{esc(tip)}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)
