"""Adaptive IG as composite Gauss-Legendre quadrature on panels of the straight path.

Why panels: completeness gives the EXACT integral of IG's scalar integrand
g(a) = grad F(gamma(a)) . (x - b) over any piece [a0, a1] of the path gamma(a) = b + a (x - b):
F(gamma(a1)) - F(gamma(a0)), a forward pass only. So every panel's quadrature error is known
exactly (its attribution sum minus its F difference), not estimated. The path starts as a few
equal panels; while the panels' absolute errors add up to more than the tolerance, the worst
panels are split in two, with fresh nodes on each part. The cut is one of the panel's own nodes:
the forward half of each gradient node already gave F there, so a split needs no extra forward
(a midpoint forward only when Captum's node outputs could not be read). A sharp softmax transition
somewhere on the path then gets nodes where it is, instead of a global node count doubled until
it is resolved (Gauss-Legendre nodes do not nest, so a doubling ladder pays for every rung).

The attributions are the sum of the panels' IG. A panel's IG is Captum's ``IntegratedGradients``
over word embeddings (``EmbedsForward``, as GradientShap uses) from gamma(a0) to gamma(a1), the
same Gauss-Legendre rule as the fixed schedule's ``LayerIntegratedGradients``; position and
segment embeddings are added inside the model in both, and non-word positions are pinned. One
Captum call per round covers every (example, panel) row of the batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.explain.attribution import (
    Batch,
    EmbedsForward,
    FloatArray,
    IGResult,
    Settings,
    embeds_inputs,
    forward_length,
    gather_targets,
)

SPLIT_SHARE = 1.0  # split the worst panels until the unsplit ones' errors fit in this share
SPLIT_RANGE = (0.2, 0.8)  # a panel is split at one of its own nodes this far into it


@dataclass
class Panel:
    """One piece [a0, a1] of the path: its token attributions and exact F at both ends."""

    a0: float
    a1: float
    f0: float
    f1: float
    tokens: FloatArray
    nodes: int
    known: tuple[tuple[float, float], ...] = ()  # (a, F(gamma(a))) at this panel's nodes

    @property
    def error(self) -> float:
        return float(self.tokens.sum() - (self.f1 - self.f0))

    @property
    def middle(self) -> float:
        return (self.a0 + self.a1) / 2


@dataclass
class Track:
    """Where one example stands: its current panels and what it has spent."""

    panels: list[Panel]
    evaluations: int = 0  # forward+backward (gradient) nodes, every round, discarded ones too
    forwards: int = 0  # forward-only path points (first panels' inner edges, fallback midpoints)

    def abs_error(self) -> float:
        return float(sum(abs(p.error) for p in self.panels))

    @property
    def nodes(self) -> int:
        return sum(p.nodes for p in self.panels)


@dataclass(frozen=True)
class StraightPath:
    """gamma(a) = base + a (end - base) in word-embedding space, for each example of a batch."""

    base: Any  # (B, L, H)
    end: Any
    args: tuple[Any, ...]  # EmbedsForward's (mask, keep, orig, types)
    seq_len: int
    per_pass: int = field(default=1)

    def at(self, rows: Sequence[int], alphas: Sequence[float]) -> Any:
        import torch

        idx = torch.tensor(list(rows), dtype=torch.long, device=self.base.device)
        a = torch.tensor(list(alphas), dtype=self.base.dtype, device=self.base.device)
        base = self.base[idx]
        return base + a.view(-1, 1, 1) * (self.end[idx] - base)

    def row_args(self, rows: Sequence[int]) -> tuple[Any, ...]:
        import torch

        idx = torch.tensor(list(rows), dtype=torch.long, device=self.base.device)
        return tuple(None if t is None else t[idx] for t in self.args)


def straight_path(model: Any, batch: Batch, s: Settings) -> StraightPath:
    import torch

    embeds, args = embeds_inputs(model, batch)
    with torch.no_grad():
        base = model.get_input_embeddings()(batch.baseline_ids).detach()
    per_pass = s.sequences_per_pass(1, forward_length(model, batch.seq_len))
    return StraightPath(base, embeds, args, batch.seq_len, per_pass)


def _chunks(n_rows: int, n_steps: int, per_pass: int) -> tuple[list[slice], int]:
    """Row slices per Captum call and its internal batch size: about ``per_pass`` sequences
    per forward/backward, passes evened out (no short tail pass)."""
    if n_rows <= per_pass:
        steps_cap = max(1, per_pass // n_rows)
        n_passes = math.ceil(n_steps / steps_cap)
        return [slice(0, n_rows)], n_rows * math.ceil(n_steps / n_passes)
    n_calls = math.ceil(n_rows / per_pass)
    size = math.ceil(n_rows / n_calls)
    return [slice(i, min(i + size, n_rows)) for i in range(0, n_rows, size)], size


class RecordingForward:
    """``EmbedsForward`` that keeps its outputs: the forward half of every gradient node gives
    F(gamma(a)) at that node for free, so panels can later be split there without a forward."""

    def __init__(self, model: Any, output: str) -> None:
        self.inner = EmbedsForward(model, output)
        self.outputs: list[Any] = []

    def __call__(self, *args: Any) -> Any:
        out = self.inner(*args)
        self.outputs.append(out.detach())
        return out


def panel_attributions(
    model: Any,
    path: StraightPath,
    rows: Sequence[tuple[int, float, float, int]],
    n_steps: int,
    s: Settings,
) -> tuple[FloatArray, FloatArray | None]:
    """(R, L) token IG of each row (example, a0, a1, target) over its piece of the path, and
    (R, n_steps) F at the rows' Gauss-Legendre nodes (None if Captum's calls did not lay them
    out step-major, as captum 0.6-0.9 do: then splits cost a forward)."""
    from captum.attr import IntegratedGradients

    fwd = RecordingForward(model, s.output)
    ig = IntegratedGradients(fwd)
    out = np.zeros((len(rows), path.seq_len), dtype=np.float64)
    node_f: FloatArray | None = np.zeros((len(rows), n_steps), dtype=np.float64)
    slices, internal = _chunks(len(rows), n_steps, path.per_pass)
    for sl in slices:
        part, fwd.outputs = rows[sl], []
        examples = [r[0] for r in part]
        attr = ig.attribute(
            path.at(examples, [r[2] for r in part]),
            baselines=path.at(examples, [r[1] for r in part]),
            target=[r[3] for r in part],
            additional_forward_args=path.row_args(examples),
            n_steps=n_steps,
            method="gausslegendre",
            internal_batch_size=max(internal, len(part)),
        )
        out[sl] = attr.sum(-1).detach().cpu().double().numpy()
        if node_f is not None and sum(o.shape[0] for o in fwd.outputs) == n_steps * len(part):
            values = gather_targets(_cat(fwd.outputs), [r[3] for r in part] * n_steps)
            node_f[sl] = values.reshape(n_steps, len(part)).T
        else:
            node_f = None
    return out, node_f


def _cat(tensors: list[Any]) -> Any:
    import torch

    return torch.cat(tensors, dim=0)


def gl_nodes(n: int) -> FloatArray:
    """Captum's Gauss-Legendre nodes on [0, 1] (the alphas its ``gausslegendre`` uses)."""
    from captum.attr._utils.approximation_methods import approximation_parameters

    _, alphas = approximation_parameters("gausslegendre")
    return np.asarray(alphas(n), dtype=np.float64)


def path_outputs(
    model: Any,
    path: StraightPath,
    rows: Sequence[tuple[int, float]],
    targets: Sequence[int],
    s: Settings,
) -> FloatArray:
    """F(gamma(a)) of the target class for each (example, a) row; forward only."""
    import torch

    fwd = EmbedsForward(model, s.output)
    out = np.zeros(len(rows), dtype=np.float64)
    step = max(1, path.per_pass)
    with torch.no_grad():
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            examples = [r[0] for r in part]
            outputs = fwd(path.at(examples, [r[1] for r in part]), *path.row_args(examples))
            out[start : start + len(part)] = gather_targets(outputs, [targets[i] for i in examples])
    return out


def choose_splits(track: Track, budget: float, cost: int, cap: int) -> list[int]:
    """Panels to split this round, worst first, until the unsplit panels' absolute errors fit
    in ``SPLIT_SHARE`` of the budget (the parts of a split panel are far more accurate than it:
    a Gauss-Legendre panel's error falls as width^(2n)). Nothing when the budget already holds
    or when ``cap`` gradient nodes cannot pay for a split (the record then shows the miss)."""
    if track.abs_error() <= budget:
        return []
    order = sorted(range(len(track.panels)), key=lambda k: -abs(track.panels[k].error))
    left = track.abs_error()
    chosen: list[int] = []
    for k in order:
        if left <= SPLIT_SHARE * budget and chosen:
            break
        if track.evaluations + cost * (len(chosen) + 1) > cap:
            break
        chosen.append(k)
        left -= abs(track.panels[k].error)
    return chosen


def split_point(p: Panel) -> tuple[float, float] | None:
    """Where to cut a panel: the node of its own (F known) in the middle range of the panel that
    best balances |dF| between the two parts, so each part carries about half of the rise (a
    cut at a node costs nothing; on the default model it needed about as many nodes as exact
    bisection, which costs a midpoint forward per split). None when it has no such node (then its midpoint is computed)."""
    width = p.a1 - p.a0
    lo, hi = p.a0 + SPLIT_RANGE[0] * width, p.a0 + SPLIT_RANGE[1] * width
    inside = [(a, f) for a, f in p.known if lo <= a <= hi]
    if not inside:
        return None
    return min(inside, key=lambda af: max(abs(af[1] - p.f0), abs(p.f1 - af[1])))


def _cuts(
    model: Any,
    path: StraightPath,
    tracks: list[Track],
    plan: Sequence[tuple[int, int]],
    targets: Sequence[int],
    s: Settings,
) -> list[tuple[float, float]]:
    """(a, F) to cut each planned panel at: one of its nodes, else its midpoint (one forward)."""
    cuts = [split_point(tracks[i].panels[k]) for i, k in plan]
    missing = [j for j, c in enumerate(cuts) if c is None]
    if missing:
        mids = [(plan[j][0], tracks[plan[j][0]].panels[plan[j][1]].middle) for j in missing]
        f_mid = path_outputs(model, path, mids, targets, s)
        for j, (i, m), f in zip(missing, mids, f_mid, strict=True):
            cuts[j] = (m, float(f))
            tracks[i].forwards += 1
    return [c for c in cuts if c is not None]


def _panels_of(
    rows: Sequence[tuple[int, float, float, int]],
    f_ends: Sequence[tuple[float, float]],
    scores: FloatArray,
    node_f: FloatArray | None,
    n: int,
) -> list[Panel]:
    nodes = gl_nodes(n)
    out = []
    for j, ((_, a0, a1, _), (f0, f1)) in enumerate(zip(rows, f_ends, strict=True)):
        known = (
            ()
            if node_f is None
            else tuple(
                (float(a0 + t * (a1 - a0)), float(v)) for t, v in zip(nodes, node_f[j], strict=True)
            )
        )
        out.append(Panel(a0, a1, f0, f1, scores[j], n, known))
    return out


def _split(
    model: Any,
    path: StraightPath,
    tracks: list[Track],
    plan: Sequence[tuple[int, int]],
    targets: Sequence[int],
    s: Settings,
) -> None:
    """Split the planned (example, panel) pairs in two, all parts in one Captum round."""
    n = s.panel_nodes
    cuts = _cuts(model, path, tracks, plan, targets, s)
    rows: list[tuple[int, float, float, int]] = []
    ends: list[tuple[float, float]] = []
    for (i, k), (c, fc) in zip(plan, cuts, strict=True):
        p = tracks[i].panels[k]
        rows += [(i, p.a0, c, targets[i]), (i, c, p.a1, targets[i])]
        ends += [(p.f0, fc), (fc, p.f1)]
        tracks[i].evaluations += 2 * n
    scores, node_f = panel_attributions(model, path, rows, n, s)
    parts = _panels_of(rows, ends, scores, node_f, n)
    halves = {key: parts[2 * j : 2 * j + 2] for j, key in enumerate(plan)}
    for i, track in enumerate(tracks):
        track.panels = [q for k, p in enumerate(track.panels) for q in halves.get((i, k), [p])]


def composite_ig(
    model: Any,
    batch: Batch,
    targets: Sequence[int],
    f_input: FloatArray,
    f_base: FloatArray,
    s: Settings,
) -> IGResult:
    """IG per example by adaptive composite Gauss-Legendre: one panel of ``s.start_steps``
    nodes, then splits of the worst panels (``s.panel_nodes`` nodes per part) until the sum of
    the panels' absolute completeness errors is within ``s.tolerance`` of max(|F(x) - F(b)|,
    floor), or ``s.max_n_steps`` gradient nodes are spent (the last panels are kept)."""
    path = straight_path(model, batch, s)
    first = min(s.start_steps or s.n_steps, s.max_n_steps)
    rows, ends, spent = first_panels(model, path, targets, f_input, f_base, s)
    scores, node_f = panel_attributions(model, path, rows, first, s)
    parts = _panels_of(rows, ends, scores, node_f, first)
    per = len(rows) // batch.size
    tracks = [Track(parts[i * per : (i + 1) * per], first * per, spent) for i in range(batch.size)]
    scale = np.maximum(np.abs(np.asarray(f_input) - f_base), s.floor)
    while True:
        plan = [
            (i, k)
            for i, t in enumerate(tracks)
            for k in choose_splits(
                t, float(s.tolerance * scale[i]), 2 * s.panel_nodes, s.max_n_steps
            )
        ]
        if not plan:
            break
        _split(model, path, tracks, plan, targets, s)
    tokens = np.stack([np.sum([p.tokens for p in t.panels], axis=0) for t in tracks])
    delta = tokens.sum(axis=1) - (np.asarray(f_input) - f_base)
    return IGResult(
        tokens=tokens,
        n_steps=[t.nodes for t in tracks],
        delta=delta,
        relative_delta=np.abs(delta) / scale,
        f_input=np.asarray(f_input),
        f_baseline=f_base,
        evaluations=[t.evaluations for t in tracks],
        panels=[len(t.panels) for t in tracks],
        forwards=[t.forwards for t in tracks],
    )


def first_panels(
    model: Any,
    path: StraightPath,
    targets: Sequence[int],
    f_input: FloatArray,
    f_base: FloatArray,
    s: Settings,
) -> tuple[list[tuple[int, float, float, int]], list[tuple[float, float]], int]:
    """Rows and end values of the first round: ``s.start_panels`` equal panels per example
    (F at their inner edges: one forward each)."""
    per = max(1, min(s.start_panels, s.max_n_steps // max(s.start_steps or s.n_steps, 1)))
    edges = [k / per for k in range(per + 1)]
    at = [(i, a) for i in range(len(targets)) for a in edges[1:-1]]
    inner = path_outputs(model, path, at, targets, s)
    rows: list[tuple[int, float, float, int]] = []
    ends: list[tuple[float, float]] = []
    for i, t in enumerate(targets):
        f = [float(f_base[i]), *inner[i * (per - 1) : (i + 1) * (per - 1)], float(f_input[i])]
        rows += [(i, edges[k], edges[k + 1], t) for k in range(per)]
        ends += [(f[k], f[k + 1]) for k in range(per)]
    return rows, ends, per - 1
