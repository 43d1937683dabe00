"""The report's charts: bars with interval whiskers, a reliability diagram, a confusion matrix
and line charts. Deterministic and dependency-free: the same data gives the same bytes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from harness.render.html import Markup, el
from harness.render.numbers import fmt, fmt_svg, is_number
from harness.render.svg import (
    ACCENT,
    INK,
    MUTED,
    WARN,
    line,
    nice_ticks,
    polyline,
    short,
    svg,
    text,
    vertical_label,
)

UNIT_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Bar:
    """One row of a bar or dot chart; ``low``/``high`` draw a confidence-interval whisker."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class _Rows:
    """The horizontal scale of a bar chart: value -> x between ``left`` and ``right``."""

    lo: float
    hi: float
    # The layout: label column, plot area, title band and row height, in pixels.
    left: ClassVar[float] = 230.0
    right: ClassVar[float] = 610.0
    top: ClassVar[float] = 28.0
    row: ClassVar[float] = 22.0

    def x(self, value: float) -> float:
        return self.left + (value - self.lo) / (self.hi - self.lo) * (self.right - self.left)


def _bar_row(scale: _Rows, i: int, bar: Bar, *, dots: bool, unit: str) -> list[Markup]:
    """Label, bar (or dot), whisker and value of one row."""
    x, row = scale.x, scale.row
    y = scale.top + i * row
    value = bar.value if is_number(bar.value) else 0.0  # always a number: filtered by the caller
    label = text(
        scale.left - 8.0,
        y + row * 0.65,
        [el("title", bar.label), short(bar.label, 34)],
        anchor="end",
    )
    body = [label]
    if dots:
        body.append(el("circle", cx=x(value), cy=y + row / 2, r="4", fill=ACCENT))
    else:
        start, end = sorted((x(0.0 if scale.lo <= 0 else scale.lo), x(value)))
        bar_rect = el(
            "rect",
            x=start,
            y=y + 4,
            width=max(end - start, 0.5),
            height=row - 8,
            fill=ACCENT,
            fill_opacity="0.75",
        )
        body.append(bar_rect)
    if is_number(bar.low) and is_number(bar.high):
        mid = y + row / 2
        body.append(line(x(bar.low), mid, x(bar.high), mid, stroke=INK, width=1.5))
        for end_value in (bar.low, bar.high):
            body.append(line(x(end_value), mid - 5, x(end_value), mid + 5, stroke=INK, width=1.5))
    body.append(text(scale.right + 6, y + row * 0.65, fmt(value) + unit, fill=MUTED))
    return body


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    unit_interval: bool = False,
    dots: bool = False,
    unit: str = "",
) -> Markup:
    """Horizontal bars (or dots) with CI whiskers; one row per ``Bar``; long labels shortened."""
    shown = [b for b in bars if is_number(b.value)]
    values = [v for b in shown for v in (b.value, b.low, b.high) if is_number(v)]
    if unit_interval and all(0.0 <= v <= 1.0 for v in values):
        ticks = list(UNIT_TICKS)
    else:
        ticks = nice_ticks(min([0.0, *values]), max([0.0, *values]))
    scale = _Rows(ticks[0], ticks[-1])
    x, top = scale.x, scale.top
    height = top + scale.row * max(len(shown), 1) + 30.0
    body: list[Markup] = [text(scale.left, 14, title, weight="600")]
    for tick in ticks:
        body.append(line(x(tick), top - 4, x(tick), height - 24))
        body.append(text(x(tick), height - 10, fmt(tick) + unit, anchor="middle", fill=MUTED))
    if scale.lo < 0 < scale.hi:
        body.append(line(x(0.0), top - 4, x(0.0), height - 24, stroke=MUTED))
    for i, bar in enumerate(shown):
        body += _bar_row(scale, i, bar, dots=dots, unit=unit)
    return svg(700.0, height, title, *body)


def reliability_diagram(
    bins: Sequence[tuple[float, float, int, float | None, float | None]],
    *,
    title: str = "Reliability diagram",
) -> Markup:
    """Accuracy per confidence bin against the diagonal; bins are (low, high, count, conf, acc).

    Bar height is the bin's accuracy; the red tick marks its mean confidence, so the gap between
    them is the miscalibration. Empty bins are drawn as nothing.
    """
    size, left, top = 300.0, 44.0, 24.0

    def px(value: float) -> float:
        return left + value * size

    def py(value: float) -> float:
        return top + (1.0 - value) * size

    body: list[Markup] = [text(left, 14, title, weight="600")]
    for tick in UNIT_TICKS:
        body.append(line(px(tick), py(0), px(tick), py(1)))
        body.append(line(px(0), py(tick), px(1), py(tick)))
        body.append(text(px(tick), py(0) + 16, fmt(tick), anchor="middle", fill=MUTED))
        body.append(text(left - 6, py(tick) + 4, fmt(tick), anchor="end", fill=MUTED))
    body.append(line(px(0), py(0), px(1), py(1), stroke=MUTED, dash="4 3"))
    for low, high, count, confidence, accuracy in bins:
        if count <= 0 or accuracy is None:
            continue
        body.append(
            el(
                "rect",
                x=px(low) + 1,
                y=py(accuracy),
                width=max((high - low) * size - 2, 0.5),
                height=max(py(0) - py(accuracy), 0.0),
                fill=ACCENT,
                fill_opacity="0.7",
                stroke=ACCENT,
            )
        )
        if confidence is not None:
            body.append(
                line(
                    px(low) + 1,
                    py(confidence),
                    px(high) - 1,
                    py(confidence),
                    stroke=WARN,
                    width=2.0,
                )
            )
    body.append(text(px(0.5), py(0) + 32, "confidence", anchor="middle", fill=MUTED))
    body.append(vertical_label("accuracy", py(0.5)))
    return svg(left + size + 20, top + size + 40, title, *body)


def _matrix_cells(
    row: Sequence[float], i: int, *, left: float, y: float, cell: float
) -> list[Markup]:
    """The shaded cells of one true-label row, each with its count."""
    total = sum(v for v in row if is_number(v)) or 1.0
    body = []
    for j, value in enumerate(row):
        share = float(value) / total if is_number(value) else 0.0
        body.append(
            el(
                "rect",
                x=left + j * cell,
                y=y,
                width=cell,
                height=cell,
                fill=ACCENT if i == j else WARN,
                fill_opacity=fmt_svg(0.08 + 0.8 * share),
                stroke="#ffffff",
            )
        )
        fill = "#ffffff" if share > 0.55 else INK
        body.append(
            text(left + (j + 0.5) * cell, y + cell / 2 + 4, fmt(value), anchor="middle", fill=fill)
        )
    return body


def confusion_matrix(
    matrix: Sequence[Sequence[float]], labels: Sequence[str], *, title: str = "Confusion matrix"
) -> Markup:
    """Counts per (true row, predicted column); shade is the row share, so rare classes show."""
    k = len(labels)
    cell = max(28.0, min(64.0, 360.0 / max(k, 1)))
    left, top = 130.0, 58.0
    body: list[Markup] = [
        text(8, 14, title, weight="600"),
        text(left + k * cell / 2, 34, "predicted", anchor="middle", fill=MUTED),
    ]
    for j, name in enumerate(labels):
        label = [el("title", name), short(name, 12)]
        body.append(text(left + (j + 0.5) * cell, top - 8, label, anchor="middle"))
    for i, row in enumerate(matrix):
        y = top + i * cell
        name = labels[i] if i < k else str(i)
        body.append(
            text(left - 8, y + cell / 2 + 4, [el("title", name), short(name, 16)], anchor="end")
        )
        body += _matrix_cells(row, i, left=left, y=y, cell=cell)
    body.append(vertical_label("true", top + k * cell / 2))
    return svg(left + k * cell + 20, top + k * cell + 16, title, *body)


PALETTE = (ACCENT, WARN, "#2f855a", "#805ad5", "#b7791f")


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    *,
    title: str,
    x_label: str = "",
    y_label: str = "",
) -> Markup:
    """Polylines for a few named series (dev curves, deletion curves)."""
    points = [p for _, pts in series for p in pts if is_number(p[0]) and is_number(p[1])]
    if not points:
        return svg(10.0, 10.0, title)
    xs = nice_ticks(min(p[0] for p in points), max(p[0] for p in points))
    ys = nice_ticks(min(p[1] for p in points), max(p[1] for p in points))
    left, top, width, height = 56.0, 26.0, 440.0, 200.0

    def px(value: float) -> float:
        return left + (value - xs[0]) / (xs[-1] - xs[0]) * width

    def py(value: float) -> float:
        return top + (1 - (value - ys[0]) / (ys[-1] - ys[0])) * height

    body: list[Markup] = [text(left, 14, title, weight="600")]
    for tick in xs:
        body.append(line(px(tick), top, px(tick), top + height))
        body.append(text(px(tick), top + height + 16, fmt(tick), anchor="middle", fill=MUTED))
    for tick in ys:
        body.append(line(left, py(tick), left + width, py(tick)))
        body.append(text(left - 6, py(tick) + 4, fmt(tick), anchor="end", fill=MUTED))
    for index, (name, pts) in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        good = [p for p in pts if is_number(p[0]) and is_number(p[1])]
        coords = " ".join(f"{fmt_svg(px(a))},{fmt_svg(py(b))}" for a, b in good)
        body.append(polyline(coords, stroke=colour))
        body.append(text(left + width + 8, top + 14 * index + 10, short(name, 18), fill=colour))
    body.append(text(left + width / 2, top + height + 32, x_label, anchor="middle", fill=MUTED))
    if y_label:
        body.append(vertical_label(y_label, top + height / 2))
    return svg(left + width + 140, top + height + 40, title, *body)
