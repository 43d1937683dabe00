"""Per-example rows -> the suite's metrics (means with 95% CIs over examples) and details.

Only stored rows are read, so fresh and resumed examples are aggregated the same way.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np

from harness.explain.faithfulness import k_key
from harness.explain.sanity import rank_correlations
from harness.records import Metric
from harness.stats import bootstrap_mean_ci, wilson_interval

Row = dict[str, Any]


class MetricBuilder:
    """Mean of per-example values with a seeded percentile-bootstrap CI."""

    def __init__(self, n_boot: int, seed: int) -> None:
        self.n_boot = n_boot
        self.seed = seed
        self.metrics: list[Metric] = []

    def mean(
        self, name: str, values: Sequence[float | None], higher: bool | None, description: str
    ) -> None:
        vals = np.asarray([v for v in values if v is not None], dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            self.metrics.append(
                Metric(name=name, value=None, higher_is_better=higher, n=0, description=description)
            )
            return
        ci = bootstrap_mean_ci(vals, n_boot=self.n_boot, seed=self.seed + len(self.metrics))
        self.metrics.append(
            Metric.with_interval(
                name=name,
                value=float(vals.mean()),
                higher_is_better=higher,
                interval=ci,
                n=int(vals.size),
                description=description,
            )
        )


def _get(row: Row, *path: str) -> Any:
    value: Any = row
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return value


def metric_key(k: float) -> str:
    return "k" + k_key(k).replace(".", "_")


def summarise(
    rows: Sequence[Row],
    *,
    methods: Sequence[str],
    ks: Sequence[float],
    label_names: Sequence[str],
    n_boot: int,
    seed: int,
    global_top: int,
    global_min_count: int,
) -> tuple[list[Metric], dict[str, Any]]:
    mb = MetricBuilder(n_boot, seed)
    mb.metrics.append(
        Metric(name="n_examples", value=len(rows), higher_is_better=None, n=len(rows),
               description="Examples explained.")
    )
    faith_names = list(methods) + (["random"] if any(_get(r, "faithfulness", "random") for r in rows) else [])
    _completeness(mb, rows, methods)
    for m in faith_names:
        _faithfulness(mb, rows, m, ks)
    for m in methods:
        for key, desc in (
            ("infidelity", "Captum infidelity (normalised), random word-subset removal; lower is better."),
            ("sensitivity_max", "Captum sensitivity_max of word attributions; lower is better."),
        ):
            mb.mean(f"{m}.{key}", [_get(r, "robustness", m, key) for r in rows], False, desc)
        for key in ("spearman", "spearman_abs"):
            mb.mean(
                f"{m}.sanity.{key}",
                [_get(r, "sanity", m, key) for r in rows],
                False,
                "Rank correlation with the attributions of a randomised-head copy "
                "(Adebayo et al. 2018); lower means the explanation depends on the model.",
            )
    agreement = _agreement(mb, rows, methods)
    details = {
        "methods": list(methods),
        "label_names": list(label_names),
        "agreement": agreement,
        "global_words": {
            m: global_words(rows, m, label_names, global_top, global_min_count) for m in methods
        },
        "mean_curves": {m: _mean_curves(rows, m) for m in faith_names},
        "ig_n_steps": dict(
            sorted(Counter(str(_get(r, "deltas", "ig", "n_steps")) for r in rows if _get(r, "deltas", "ig")).items())
        ),
    }
    return mb.metrics, details


def _completeness(mb: MetricBuilder, rows: Sequence[Row], methods: Sequence[str]) -> None:
    if "ig" in methods:
        ig = [_get(r, "deltas", "ig") for r in rows]
        ig = [d for d in ig if d]
        mb.mean(
            "ig.completeness.relative_delta",
            [d.get("relative_delta") for d in ig],
            False,
            "|sum of IG attributions - (F(x) - F(baseline))| / |F(x) - F(baseline)|, at the final n_steps.",
        )
        inside = sum(bool(d.get("within_tolerance")) for d in ig)
        ci = wilson_interval(inside, len(ig))
        mb.metrics.append(
            Metric.with_interval(
                name="ig.completeness.within_tolerance",
                value=inside / len(ig) if ig else None,
                higher_is_better=True,
                interval=ci,
                n=len(ig),
                description="Share of examples whose relative IG gap is within tolerance.",
            )
        )
        mb.mean("ig.n_steps", [d.get("n_steps") for d in ig], None, "Final IG n_steps per example.")
        spent = [d.get("n_evaluations") for d in ig if d.get("n_evaluations") is not None]
        if spent:
            mb.mean("ig.n_evaluations", spent, None, "IG gradient steps spent per example, every "
                    "round included, discarded panels too (the work the adaptive schedule saves).")
        forwards = [d.get("n_forwards") for d in ig if d.get("n_forwards") is not None]
        if forwards:
            mb.mean("ig.n_forwards", forwards, None, "Adaptive IG: forward-only path points "
                    "per example (inner edges of the first panels, midpoints of splits).")
    if "gradient_shap" in methods:
        mb.mean(
            "gradient_shap.completeness.relative_delta",
            [_get(r, "deltas", "gradient_shap", "relative_delta") for r in rows],
            False,
            "|sum of GradientShap attributions - (F(x) - E[F(baseline)])| / |F(x) - E[F(baseline)]|.",
        )


def _faithfulness(mb: MetricBuilder, rows: Sequence[Row], m: str, ks: Sequence[float]) -> None:
    def get(*path: str) -> list[Any]:
        return [_get(r, "faithfulness", m, *path) for r in rows]

    mb.mean(f"{m}.comprehensiveness.aopc", get("aopc_comprehensiveness"), True,
            "ERASER comprehensiveness AOPC (mean over k bins): p(x) - p(x without top words).")
    mb.mean(f"{m}.sufficiency.aopc", get("aopc_sufficiency"), False,
            "ERASER sufficiency AOPC (mean over k bins): p(x) - p(only top words).")
    for k in ks:
        mb.mean(f"{m}.comprehensiveness.{metric_key(k)}", get("comprehensiveness", k_key(k)), True,
                f"Comprehensiveness with the top {k_key(k)}% words removed.")
        mb.mean(f"{m}.sufficiency.{metric_key(k)}", get("sufficiency", k_key(k)), False,
                f"Sufficiency keeping only the top {k_key(k)}% words.")
    mb.mean(f"{m}.deletion_auc", get("deletion_auc"), False,
            "Area under p(target) as top words are deleted.")
    mb.mean(f"{m}.insertion_auc", get("insertion_auc"), True,
            "Area under p(target) as top words are inserted into an empty text.")


def _agreement(mb: MetricBuilder, rows: Sequence[Row], methods: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a, b in combinations(methods, 2):
        pairs = [
            rank_correlations(r["attributions"][a], r["attributions"][b])
            for r in rows
            if _get(r, "attributions", a) is not None and _get(r, "attributions", b) is not None
        ]
        for idx, stat in enumerate(("spearman", "kendall")):
            values = [p[idx] for p in pairs]
            mb.mean(f"agreement.{a}.{b}.{stat}", values, None,
                    f"{stat.title()} rank correlation of word attributions, {a} vs {b}.")
            out[f"{a}/{b}/{stat}"] = mb.metrics[-1].value
    return out


def _mean_curves(rows: Sequence[Row], m: str) -> dict[str, list[float] | None]:
    out: dict[str, list[float] | None] = {}
    for key in ("deletion_curve", "insertion_curve"):
        curves = [c for c in (_get(r, "faithfulness", m, key) for r in rows) if c]
        out[key] = np.asarray(curves, dtype=np.float64).mean(axis=0).tolist() if curves else None
    return out


def global_words(
    rows: Sequence[Row], method: str, label_names: Sequence[str], top: int, min_count: int
) -> dict[str, list[dict[str, Any]]]:
    """Per class: the words with the highest mean attribution toward it, over the examples
    explained toward that class (words lower-cased; seen at least ``min_count`` times)."""
    sums: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        attrs = _get(r, "attributions", method)
        if attrs is None:
            continue
        for word, value in zip(r["words"], attrs, strict=True):
            if value is not None:
                sums[int(r["target"])][word.lower()].append(float(value))
    out: dict[str, list[dict[str, Any]]] = {}
    for c, name in enumerate(label_names):
        stats = [(w, float(np.mean(v)), len(v)) for w, v in sums[c].items() if len(v) >= min_count]
        stats.sort(key=lambda t: (-t[1], t[0]))
        out[name] = [{"word": w, "mean_attribution": v, "count": n} for w, v, n in stats[:top]]
    return out

