"""A learning-curve chart: accuracy (with its interval) against training shots, one line per method.

The shots axis is categorical (8, 16, 32, 64, all: evenly spaced in order), because K spans
orders of magnitude and "all" is not a number of shots. Each method is one polyline through its
points' values, each point carrying a whisker over its interval; colours repeat a fixed palette
and a legend names them. Methods are dodged: each has its own small x offset inside a K's band
(``dodge``), shared by its line, mean points, whiskers and seed dots, so methods at the same K
never sit on top of each other; the seed dots sit just right of their method's mean. Plain markup with presentation attributes only, as the site's other
charts (``harness.render.plots``); the numbers are also in the tooltip of every point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.render.html import Markup, el
from harness.render.numbers import fmt_fixed, fmt_site
from harness.render.svg import described_svg, line, nice_ticks, polyline, text

W, H = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 64, 170, 36, 52  # the legend lives in the right margin
INK = "currentColor"
DODGE_MAX = 16.0  # px between neighbouring methods' slots at one K, at most
DODGE_SHARE = 0.7  # share of a K's band the methods' slots may span together
PALETTE = (  # 12 distinct hues; a 13th method repeats them dashed
    "#1d4ed8", "#b45309", "#15803d", "#b91c1c", "#7c3aed", "#0f766e",
    "#be185d", "#4d7c0f", "#0369a1", "#a16207", "#6d28d9", "#334155",
)  # fmt: skip


@dataclass(frozen=True)
class CurvePoint:
    """One (method, shots) cell: ``shots`` None is "all"; ``n`` runs (seeds) behind the value."""

    shots: int | None
    value: float
    low: float | None
    high: float | None
    n: int
    seeds: tuple[float, ...] = ()  # each seed's own value, drawn as small hollow dots


def cell_of(config: dict[str, Any]) -> tuple[str, int | None] | None:
    """(method, shots) of a run file; None for a plain classifier without a fine-tune stage."""
    ft = config.get("finetune")
    if isinstance(ft, dict):
        shots = ft.get("shots")
        return str(ft.get("method", "full")), int(shots) if shots is not None else None
    kind = (config.get("model") or {}).get("kind", "hf-classifier")
    return None if kind == "hf-classifier" else (str(kind), 0)


def sweep_cell(config: dict[str, Any]) -> tuple[str, int | None]:
    """(method, shots) of a sweep job: ``cell_of``, a plain classifier as its kind at 0 shots
    (a sweep report lists it; the leaderboard's curve does not)."""
    kind = str((config.get("model") or {}).get("kind", "hf-classifier"))
    return cell_of(config) or (kind, 0)


def _d(value: float) -> str:
    return fmt_fixed(value, 1)


def shot_label(shots: int | None) -> str:
    return "all" if shots is None else str(shots)


def _order(shots: int | None) -> tuple[int, int]:
    return (1, 0) if shots is None else (0, shots)


def learning_curves(
    chart_id: str, series: Mapping[str, Sequence[CurvePoint]], *, title: str, y_label: str
) -> Markup:
    """The chart, or empty markup when no method has two or more shot settings to join."""
    if not any(len(points) > 1 for points in series.values()):
        return Markup("")
    columns = sorted({p.shots for points in series.values() for p in points}, key=_order)
    ys = [
        v
        for points in series.values()
        for p in points
        for v in (p.value, p.low, p.high, *p.seeds)
        if v is not None
    ]
    y0, y1 = min(ys), max(ys)
    pad = (y1 - y0) * 0.06 or 0.05
    y0, y1 = y0 - pad, y1 + pad

    band = (W - LEFT - RIGHT) / len(columns)
    offsets, seed_dx = dodge(len(series), band)

    def px(shots: int | None) -> float:
        i = columns.index(shots)
        return LEFT + (i + 0.5) * band

    def py(y: float) -> float:
        return H - BOTTOM - (y - y0) / (y1 - y0) * (H - TOP - BOTTOM)

    parts = _axes(columns, px, py, (y0, y1), y_label)
    for n, (method, points) in enumerate(sorted(series.items())):
        colour = PALETTE[n % len(PALETTE)]
        ordered = sorted(points, key=lambda p: _order(p.shots))
        dx = offsets[n]
        coords = " ".join(f"{_d(px(p.shots) + dx)},{_d(py(p.value))}" for p in ordered)
        dash = "6 3" if n >= len(PALETTE) else None
        parts.append(polyline(coords, stroke=colour, dash=dash, cls="curve", self_closing=True))
        for p in ordered:
            parts += _point(method, p, colour, px(p.shots) + dx, py, seed_dx)
        ly = TOP + 16 * n
        parts.append(line(str(W - RIGHT + 12), _d(ly), str(W - RIGHT + 32), _d(ly), stroke=colour, dash=dash,
                          width="2", self_closing=True))  # fmt: skip
        parts.append(text(str(W - RIGHT + 38), _d(ly + 4), method[:22], size=11, fill=INK))
    desc = "; ".join(
        f"{m}: "
        + ", ".join(
            f"{shot_label(p.shots)} shots {fmt_site(p.value)}"
            for p in sorted(ps, key=lambda p: _order(p.shots))
        )
        for m, ps in sorted(series.items())
    )
    return described_svg(chart_id, f"0 0 {W} {H}", title, desc, parts)


def dodge(n_methods: int, band: float) -> tuple[list[float], float]:
    """Each method's x offset from its K's centre, and the seed dots' offset from their mean.

    Methods take evenly spaced slots, centred on the K, at most ``DODGE_MAX`` px apart and
    together spanning at most ``DODGE_SHARE`` of the K's band; the seed dots sit 0.4 slot (at
    most 7 px) right of their method. Every centre so stays well inside its K's band: the
    outermost offset plus the seed shift is at most (0.35 (n - 1) + 0.28) / n = 0.35 - 0.07 / n
    of the band, against the half band (0.5) that would reach the neighbouring K.
    """
    if n_methods < 1:
        return [], 0.0
    slot = min(DODGE_MAX, DODGE_SHARE * band / n_methods)
    offsets = [(i - (n_methods - 1) / 2) * slot for i in range(n_methods)]
    return offsets, min(7.0, 0.4 * slot)


XScale = Callable[[int | None], float]
YScale = Callable[[float], float]


def _axes(
    columns: Sequence[int | None], px: XScale, py: YScale, span: tuple[float, float], y_label: str
) -> list[Markup]:
    base, left = str(H - BOTTOM), str(LEFT)
    parts = [
        line(
            left, base, str(W - RIGHT), base, stroke=INK, width=None, cls="axis", self_closing=True
        ),
        line(left, str(TOP), left, base, stroke=INK, width=None, cls="axis", self_closing=True),
    ]
    for shots in columns:
        x = _d(px(shots))
        parts.append(
            line(x, base, x, str(H - BOTTOM + 5), stroke=INK, width=None, self_closing=True)
        )
        parts.append(
            text(x, str(H - BOTTOM + 18), shot_label(shots), anchor="middle", size=11, fill=INK)
        )
    for t in nice_ticks(span[0], span[1], within=True):
        y = _d(py(t))
        parts.append(line(str(LEFT - 5), y, left, y, stroke=INK, width=None, self_closing=True))
        parts.append(
            text(str(LEFT - 8), _d(py(t) + 4), fmt_site(t), anchor="end", size=11, fill=INK)
        )
    parts.append(
        text(
            _d((LEFT + W - RIGHT) / 2),
            str(H - 12),
            "training examples per class",
            anchor="middle",
            size=12,
            fill=INK,
        )
    )
    mid = _d((TOP + H - BOTTOM) / 2)
    parts.append(
        text(
            "16",
            mid,
            y_label,
            size=12,
            fill=INK,
            transform=f"rotate(-90 16 {mid})",
            anchor="middle",
        )
    )
    return parts


def _point(
    method: str, p: CurvePoint, colour: str, x: float, py: YScale, seed_dx: float
) -> list[Markup]:
    parts = []
    if p.low is not None and p.high is not None:
        parts.append(
            line(
                _d(x),
                _d(py(p.low)),
                _d(x),
                _d(py(p.high)),
                stroke=colour,
                width=None,
                self_closing=True,
            )
        )
    ci = "" if p.low is None or p.high is None else f" [{fmt_site(p.low)}, {fmt_site(p.high)}]"
    tip = f"{method}, {shot_label(p.shots)} shots: {fmt_site(p.value)}{ci} ({p.n} run{'s' * (p.n != 1)})"
    parts.append(el("circle", el("title", tip), cx=_d(x), cy=_d(py(p.value)), r="4", fill=colour))
    for i, v in enumerate(p.seeds):
        seed_tip = f"{method}, {shot_label(p.shots)} shots, seed run {i + 1}: {fmt_site(v)}"
        parts.append(el("circle", el("title", seed_tip),
                        cx=_d(x + seed_dx), cy=_d(py(v)), r="2.5", fill="none", stroke=colour,
                        cls="seed"))  # fmt: skip
    return parts
