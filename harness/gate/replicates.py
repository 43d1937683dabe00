"""Replicate runs: compare two sets of runs that differ only in their training seed.

A fine-tuned model's score moves with its seed; a test over examples alone treats one seed's
luck as the method's effect. With replicates (``harness gate --baseline A1 A2 A3 --candidate
B1 B2 B3``) the difference of the two sides' mean metric D has two variance parts:

* **between seeds**: the spread of the per-run values, s²_A / r_A + s²_B / r_B (Welch); when one
  side has a single run, both sides share the pooled seed variance of the other;
* **between examples**: the sampling variance of the seed-averaged per-example difference over
  the shared examples, less the per-example noise of each run that the seed part already holds
  (``example_variance``); for table statistics such as macro-F1 a paired bootstrap over
  examples of the seed-averaged difference, which keeps that noise (conservative). Without
  per-example data this part is left out and the verdict says so.

D / sqrt(V) is referred to Student's t with Welch–Satterthwaite degrees of freedom; the same t
gives the interval, the power (noncentral t) and the equivalence interval. A hierarchical
bootstrap (seeds, then examples) was the alternative: in simulation with three seeds per side
it rejected a true null 0.2–0.7% of the time at alpha 0.05 (it counts each run's per-example
noise twice, like a naive two-part variance), so it gives away power; this test holds 2.5–4.5%
(benchmarks/bench_gate_statistics.py measures both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.gate.extract import (
    ExampleValues,
    Extracted,
    TableValues,
    Unusable,
    aligned,
    extract,
)
from harness.gate.inputs import PredictionTable, RunData
from harness.gate.result import EvidenceSettings, TestResult
from harness.gate.rules import Rule
from harness.stats import Interval

FloatArray = np.ndarray


@dataclass(frozen=True)
class SideSummary:
    """One side's per-run values of a metric."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def seed_sd(self) -> float | None:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else None


def side_values(runs: list[RunData], rule: Rule) -> SideSummary | str:
    """The metric in every run of a side, or why it cannot be read."""
    out = []
    for run in runs:
        suite = run.record.suite(rule.metric.suite)
        metric = None if suite is None else suite.metric(rule.metric.metric)
        if metric is None or metric.value is None or suite is None or suite.status != "ok":
            return f"{run.path} has no value for {rule.metric}"
        out.append(metric.value)
    return SideSummary(tuple(out))


def _seed_variance(a: SideSummary, b: SideSummary) -> tuple[float, float, str]:
    """(variance of D from seeds, its degrees-of-freedom term, words)."""
    ra, rb = len(a.values), len(b.values)
    if ra > 1 and rb > 1:
        va, vb = (a.seed_sd or 0.0) ** 2 / ra, (b.seed_sd or 0.0) ** 2 / rb
        return va + vb, va**2 / (ra - 1) + vb**2 / (rb - 1), "Welch over seeds"
    several = a if ra > 1 else b
    r = len(several.values)
    pooled = (several.seed_sd or 0.0) ** 2
    var = pooled * (1 / ra + 1 / rb)
    return var, var**2 / (r - 1), f"seed variance of the side with {r} runs, applied to both"


def _example_part(xa: list[Extracted], xb: list[Extracted], s: EvidenceSettings) -> tuple[float, int] | None:
    """(variance of D from the examples, n) from the runs' per-example values, or None."""
    if all(isinstance(x, ExampleValues) for x in xa + xb):
        maps = [x.values for x in xa + xb]  # type: ignore[union-attr]
        shared = [k for k in maps[0] if all(k in m for m in maps[1:])]
        if len(shared) < 2:
            return None
        ma = np.asarray([[x.values[k] for k in shared] for x in xa])  # type: ignore[union-attr]
        mb = np.asarray([[x.values[k] for k in shared] for x in xb])  # type: ignore[union-attr]
        return example_variance(ma, mb), len(shared)
    if all(isinstance(x, TableValues) for x in xa + xb):
        return _table_bootstrap(xa, xb, s)  # type: ignore[arg-type]
    return None


def example_variance(ma: FloatArray, mb: FloatArray) -> float:
    """Variance of D from which examples were drawn, without the seed-by-example noise.

    The spread over examples of the seed-averaged difference also holds each run's own noise
    per example (an example right under one seed and wrong under another), which the seed part
    already counts through the run values. That noise is estimated by the within-example
    variance across seeds and subtracted (a method-of-moments estimate, floored at 0); a side
    with one run borrows the other side's.
    """
    d = mb.mean(axis=0) - ma.mean(axis=0)
    within = [float(m.var(axis=0, ddof=1).mean()) if m.shape[0] > 1 else None for m in (ma, mb)]
    known = [w for w in within if w is not None]
    fallback = float(np.mean(known)) if known else 0.0
    noise = sum(
        (fallback if w is None else w) / int(m.shape[0]) for w, m in zip(within, (ma, mb), strict=True)
    )
    return float(max(0.0, float(d.var(ddof=1)) - noise) / int(d.size))


def _table_bootstrap(
    xa: list[TableValues], xb: list[TableValues], s: EvidenceSettings
) -> tuple[float, int] | None:
    """Variance over examples of the seed-averaged difference, by a paired bootstrap."""
    first = xa[0].table
    tables = [aligned(first, x.table)[1] for x in xa + xb]
    common = set.intersection(*(set(t.ids) for t in tables))
    keep = [i for i, ident in enumerate(first.ids) if ident in common]
    if len(keep) < 2:
        return None
    order = [first.ids[i] for i in keep]
    tables = [t.take([t.index()[ident] for ident in order]) for t in tables]
    n, metric = len(order), xa[0].metric
    rng = np.random.default_rng(s.seed)
    idx = rng.integers(0, n, size=(min(s.n_boot, 1000), n))

    def mean_score(group: list[PredictionTable]) -> FloatArray:
        probs = metric.needs_probabilities
        scores = [
            metric.score(t.labels[idx], t.predicted[idx], t.probabilities[idx] if probs else None)
            for t in group
        ]
        return np.asarray(np.mean(scores, axis=0), dtype=np.float64)

    draws = mean_score(tables[len(xa) :]) - mean_score(tables[: len(xa)])
    draws = draws[np.isfinite(draws)]
    return (float(draws.var(ddof=1)), n) if draws.size > 1 else None


def replicate_result(
    base: list[RunData], cand: list[RunData], rule: Rule, a: SideSummary, b: SideSummary,
    s: EvidenceSettings,
) -> TestResult:
    """The two-level t test of the difference of the sides' mean metric."""
    try:
        xa = [extract(run, rule) for run in base]
        xb = [extract(run, rule) for run in cand]
        part = None if None in xa + xb else _example_part(xa, xb, s)  # type: ignore[arg-type]
        why = "no per-example data in every run" if part is None else ""
    except Unusable as exc:
        part, why = None, str(exc)
    return replicate_t(a, b, part, s, why=why)


def replicate_t(
    a: SideSummary,
    b: SideSummary,
    example_part: tuple[float, int] | None,
    s: EvidenceSettings,
    *,
    why: str = "",
) -> TestResult:
    """D = mean(b) − mean(a) against t with Welch–Satterthwaite df over both variance parts."""
    from scipy.stats import t as student

    seed_var, seed_df_term, seed_words = _seed_variance(a, b)
    ex_var, n = (0.0, None) if example_part is None else example_part
    var = seed_var + ex_var
    d = b.mean - a.mean
    if not var > 0:
        return TestResult(
            "replicate t", None, n, kind="replicates", estimate=d,
            baseline_value=a.mean, candidate_value=b.mean,
            note="the runs' values do not vary (seed-to-seed sd 0): no test is possible",
        )
    df_term = seed_df_term + (0.0 if n is None else ex_var**2 / (n - 1))
    df = var**2 / df_term if df_term > 0 else math.inf
    se = math.sqrt(var)
    examples = (
        f"example variance over {n} shared examples included"
        if n is not None
        else f"example variance not included: {why}"
    )
    note = (
        f"{len(a.values)} baseline run(s), mean {a.mean:.4g} ± {_sd(a)} seed sd; "
        f"{len(b.values)} candidate run(s), mean {b.mean:.4g} ± {_sd(b)}; {seed_words}; {examples}"
    )

    def interval(confidence: float) -> Interval:
        half = float(student.ppf(0.5 + confidence / 2, df)) * se
        return Interval(d - half, d + half, f"replicate t (df={df:.3g})")

    ci = interval(0.95)
    eq = None if s.equivalence_alpha is None else interval(1 - 2 * s.equivalence_alpha)
    return TestResult(
        f"replicate t (df {df:.3g})", float(2 * student.sf(abs(d) / se, df)), n, ci.low, ci.high,
        note=note, kind="replicates", estimate=d, baseline_value=a.mean, candidate_value=b.mean,
        mde=_t_power_mde(se, df, s), mde_basis=f"noncentral t power (df {df:.3g}, se {se:.3g})",
        equivalence_low=None if eq is None else eq.low,
        equivalence_high=None if eq is None else eq.high, interval_method=ci.method,
    )


def _sd(side: SideSummary) -> str:
    return "n/a" if side.seed_sd is None else f"{side.seed_sd:.3g}"


def _t_power_mde(se: float, df: float, s: EvidenceSettings) -> float | None:
    from scipy.optimize import brentq
    from scipy.stats import t

    from harness.stats.paired import t_power

    crit = float(t.ppf(1 - s.alpha_power / 2, df))

    def shortfall(effect: float) -> float:
        return t_power(crit, df, effect / se) - s.power

    hi = se
    while shortfall(hi) < 0:
        hi *= 2
        if hi > 1e12 * se:
            return None
    return float(brentq(shortfall, 0.0, hi, xtol=se * 1e-9))
