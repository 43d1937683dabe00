"""Small inline SVG charts: deterministic, dependency-free, printable.

Charts are built with ``html.el`` so every label is escaped; every coordinate goes through
``fmt_svg`` (two decimals), so the same data always gives the same bytes. Colours are
attributes rather than CSS so a chart prints the same as it shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.reports.html import Markup, el, fmt, fmt_svg, is_number

INK = "#1d2733"
MUTED = "#6b7785"
GRID = "#d8dee6"
ACCENT = "#2b6cb0"
WARN = "#c0392b"
FONT = 11


@dataclass(frozen=True)
class Bar:
    """One row of a bar or dot chart; ``low``/``high`` draw a confidence-interval whisker."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None


def _svg(width: float, height: float, title: str, *body: Markup) -> Markup:
    return el(
        "svg",
        el("title", title),
        *body,
        xmlns="http://www.w3.org/2000/svg",
        viewBox=f"0 0 {fmt_svg(width)} {fmt_svg(height)}",
        width=fmt_svg(width),
        height=fmt_svg(height),
        role="img",
        aria_label=title,
        cls="chart",
    )


def _text(
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "start",
    size: int = FONT,
    fill: str = INK,
    weight: str | None = None,
) -> Markup:
    return el(
        "text",
        text,
        x=float(x),
        y=float(y),
        text_anchor=anchor,
        font_size=str(size),
        fill=fill,
        font_weight=weight,
    )


def _line(
    x1: float,
    y1: float,
    x2: float,
    y2: float,
    *,
    stroke: str = GRID,
    width: float = 1.0,
    dash: str | None = None,
) -> Markup:
    return el(
        "line",
        x1=float(x1),
        y1=float(y1),
        x2=float(x2),
        y2=float(y2),
        stroke=stroke,
        stroke_width=fmt_svg(width),
        stroke_dasharray=dash,
    )


def _short(label: str, limit: int = 30) -> str:
    """Shorten in the middle: both the start and the (often telling) end of a name stay."""
    if len(label) <= limit:
        return label
    head = (limit - 1) // 2
    return label[:head] + "…" + label[-(limit - 1 - head) :]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 × 10^k steps) covering [low, high]."""
    if not high > low:
        high = low + 1.0
    raw_step = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw_step))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw_step)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


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
        ticks = [0.0, 0.25, 0.5, 0.75, 1.0]
    else:
        ticks = nice_ticks(min([0.0, *values]), max([0.0, *values]))
    lo, hi = ticks[0], ticks[-1]
    left, right, top, row = 230.0, 610.0, 28.0, 22.0
    height = top + row * max(len(shown), 1) + 30.0

    def x(value: float) -> float:
        return left + (value - lo) / (hi - lo) * (right - left)

    body: list[Markup] = [_text(left, 14, title, weight="600")]
    for tick in ticks:
        body.append(_line(x(tick), top - 4, x(tick), height - 24))
        body.append(_text(x(tick), height - 10, fmt(tick) + unit, anchor="middle", fill=MUTED))
    if lo < 0 < hi:
        body.append(_line(x(0.0), top - 4, x(0.0), height - 24, stroke=MUTED))
    for i, bar in enumerate(shown):
        y = top + i * row
        value = bar.value if is_number(bar.value) else 0.0  # always a number: filtered above
        label = el(
            "text",
            el("title", bar.label),
            _short(bar.label, 34),
            x=left - 8.0,
            y=y + row * 0.65,
            text_anchor="end",
            font_size=str(FONT),
            fill=INK,
        )
        body.append(label)
        if dots:
            body.append(el("circle", cx=x(value), cy=y + row / 2, r="4", fill=ACCENT))
        else:
            start, end = sorted((x(0.0 if lo <= 0 else lo), x(value)))
            body.append(
                el(
                    "rect",
                    x=start,
                    y=y + 4,
                    width=max(end - start, 0.5),
                    height=row - 8,
                    fill=ACCENT,
                    fill_opacity="0.75",
                )
            )
        if is_number(bar.low) and is_number(bar.high):
            mid = y + row / 2
            body.append(_line(x(bar.low), mid, x(bar.high), mid, stroke=INK, width=1.5))
            for end_value in (bar.low, bar.high):
                body.append(
                    _line(x(end_value), mid - 5, x(end_value), mid + 5, stroke=INK, width=1.5)
                )
        body.append(_text(right + 6, y + row * 0.65, fmt(value) + unit, fill=MUTED))
    return _svg(700.0, height, title, *body)


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

    body: list[Markup] = [_text(left, 14, title, weight="600")]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        body.append(_line(px(tick), py(0), px(tick), py(1)))
        body.append(_line(px(0), py(tick), px(1), py(tick)))
        body.append(_text(px(tick), py(0) + 16, fmt(tick), anchor="middle", fill=MUTED))
        body.append(_text(left - 6, py(tick) + 4, fmt(tick), anchor="end", fill=MUTED))
    body.append(_line(px(0), py(0), px(1), py(1), stroke=MUTED, dash="4 3"))
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
                _line(
                    px(low) + 1,
                    py(confidence),
                    px(high) - 1,
                    py(confidence),
                    stroke=WARN,
                    width=2.0,
                )
            )
    body.append(_text(px(0.5), py(0) + 32, "confidence", anchor="middle", fill=MUTED))
    body.append(
        el(
            "text",
            "accuracy",
            x=12.0,
            y=py(0.5),
            font_size=str(FONT),
            fill=MUTED,
            text_anchor="middle",
            transform=f"rotate(-90 12 {fmt_svg(py(0.5))})",
        )
    )
    return _svg(left + size + 20, top + size + 40, title, *body)


def confusion_matrix(
    matrix: Sequence[Sequence[float]], labels: Sequence[str], *, title: str = "Confusion matrix"
) -> Markup:
    """Counts per (true row, predicted column); shade is the row share, so rare classes show."""
    k = len(labels)
    cell = max(28.0, min(64.0, 360.0 / max(k, 1)))
    left, top = 130.0, 58.0
    body: list[Markup] = [
        _text(8, 14, title, weight="600"),
        _text(left + k * cell / 2, 34, "predicted", anchor="middle", fill=MUTED),
    ]
    for j, name in enumerate(labels):
        body.append(
            el(
                "text",
                el("title", name),
                _short(name, 12),
                x=left + (j + 0.5) * cell,
                y=top - 8,
                text_anchor="middle",
                font_size=str(FONT),
                fill=INK,
            )
        )
    for i, row in enumerate(matrix):
        total = sum(v for v in row if is_number(v)) or 1.0
        y = top + i * cell
        body.append(
            el(
                "text",
                el("title", labels[i] if i < k else str(i)),
                _short(labels[i] if i < k else str(i), 16),
                x=left - 8,
                y=y + cell / 2 + 4,
                text_anchor="end",
                font_size=str(FONT),
                fill=INK,
            )
        )
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
            body.append(
                _text(
                    left + (j + 0.5) * cell,
                    y + cell / 2 + 4,
                    fmt(value),
                    anchor="middle",
                    fill="#ffffff" if share > 0.55 else INK,
                )
            )
    body.append(
        el(
            "text",
            "true",
            x=12.0,
            y=top + k * cell / 2,
            font_size=str(FONT),
            fill=MUTED,
            text_anchor="middle",
            transform=f"rotate(-90 12 {fmt_svg(top + k * cell / 2)})",
        )
    )
    return _svg(left + k * cell + 20, top + k * cell + 16, title, *body)


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
        return _svg(10.0, 10.0, title)
    xs, ys = (
        nice_ticks(min(p[0] for p in points), max(p[0] for p in points)),
        nice_ticks(min(p[1] for p in points), max(p[1] for p in points)),
    )
    left, top, width, height = 56.0, 26.0, 440.0, 200.0

    def px(value: float) -> float:
        return left + (value - xs[0]) / (xs[-1] - xs[0]) * width

    def py(value: float) -> float:
        return top + (1 - (value - ys[0]) / (ys[-1] - ys[0])) * height

    body: list[Markup] = [_text(left, 14, title, weight="600")]
    for tick in xs:
        body.append(_line(px(tick), top, px(tick), top + height))
        body.append(_text(px(tick), top + height + 16, fmt(tick), anchor="middle", fill=MUTED))
    for tick in ys:
        body.append(_line(left, py(tick), left + width, py(tick)))
        body.append(_text(left - 6, py(tick) + 4, fmt(tick), anchor="end", fill=MUTED))
    palette = (ACCENT, WARN, "#2f855a", "#805ad5", "#b7791f")
    for index, (name, pts) in enumerate(series):
        colour = palette[index % len(palette)]
        good = [p for p in pts if is_number(p[0]) and is_number(p[1])]
        coords = " ".join(f"{fmt_svg(px(a))},{fmt_svg(py(b))}" for a, b in good)
        body.append(el("polyline", points=coords, fill="none", stroke=colour, stroke_width="2"))
        body.append(_text(left + width + 8, top + 14 * index + 10, _short(name, 18), fill=colour))
    body.append(_text(left + width / 2, top + height + 32, x_label, anchor="middle", fill=MUTED))
    if y_label:
        mid = top + height / 2
        body.append(
            el(
                "text",
                y_label,
                x=12.0,
                y=mid,
                font_size=str(FONT),
                fill=MUTED,
                text_anchor="middle",
                transform=f"rotate(-90 12 {fmt_svg(mid)})",
            )
        )
    return _svg(left + width + 140, top + height + 40, title, *body)
