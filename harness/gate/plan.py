"""``harness gate --plan``: how many examples a policy needs before anything is run.

For each comparative rule: the change to detect (the rule's tolerance; for ``within`` the
margin, at a true difference of 0), the test the gate would use, and the smallest n at which
that test reaches the policy's power at the level the gate judges power at (alpha / m under
Holm). What the answer depends on is said in the row:

* 0/1 outcomes (accuracy): the share of examples whose outcome differs between baseline and
  candidate (discordance). Measured from two or more baseline replicate runs when given, else
  ``--discordance``, else assumed 0.10 — the row says which. For scale: the committed full and
  LoRA fine-tunes of the default benchmark differ in correctness on 12.9% of its test split, the
  full and head-only ones on 30.1%; a candidate close to its baseline differs on fewer;
* table statistics (macro-F1): from the randomization null between two baseline replicates,
  scaled by sqrt(n0 / n); without replicates, planned as accuracy (said);
* continuous per-example values: the spread of the per-example differences between two
  baseline replicates;
* latency quantiles: the bootstrap standard error of the quantile in a baseline run;
* metrics without per-example data: the baseline record's 95% interval, scaled by sqrt(n0 / n).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.gate.extract import (
    BINARY_PREDICTION_METRICS,
    ExampleValues,
    Extracted,
    SampleValues,
    TableValues,
    Unusable,
    aligned,
    extract,
)
from harness.gate.inputs import RunData
from harness.gate.policy import Policy
from harness.gate.randomization import randomization_result
from harness.gate.result import EvidenceSettings, settings_for
from harness.gate.rules import BoundCheck, Rule
from harness.stats import paired

DEFAULT_DISCORDANCE = 0.10
MAX_N = 10_000_000
TABLE_METRICS = ("f1", "precision", "recall", "ece")


@dataclass(frozen=True)
class PlanRow:
    rule: str
    effect: float | None  # the change the rule must be able to detect, in the metric's unit
    test: str
    n_required: int | None
    unit: str
    basis: str  # what the answer rests on
    current_n: int | None = None  # n in the given baseline run, for comparison

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def smallest_n(detects: Callable[[int], bool], start: int = 2) -> int | None:
    """Smallest n with ``detects(n)`` (monotone in n up to the exact tests' saw-teeth)."""
    lo, hi = start, start
    while not detects(hi):
        lo, hi = hi, hi * 2
        if hi > MAX_N:
            return None
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if detects(mid) else (mid + 1, hi)
    return hi


def _binary_n(effect: float, psi: float, s: EvidenceSettings, equivalence: bool) -> int | None:
    if equivalence:  # TOST at a true difference of 0 (normal approximation to Tango's interval)
        from scipy.stats import norm

        z = float(norm.ppf(1 - s.alpha_power) + norm.ppf(1 - (1 - s.power) / 2))
        return math.ceil(z * z * psi / (effect * effect))
    psi = max(psi, effect)

    def detects(n: int) -> bool:
        return paired.mcnemar_power(n, (psi + effect) / 2, (psi - effect) / 2, alpha=s.alpha_power) >= s.power

    return smallest_n(detects, start=paired.min_informative(s.alpha_power))


def _scaled_n(n0: int, se0: float, effect: float, s: EvidenceSettings) -> int | None:
    """n at which a standard error se0 at n0 (shrinking as 1/sqrt(n)) detects ``effect``."""
    mde0 = paired.normal_mde(se0, alpha=s.alpha_power, power=s.power)
    if mde0 is None:
        return None
    return max(2, math.ceil(n0 * (mde0 / effect) ** 2))


def _discordance(bases: list[RunData], rule: Rule, given: float | None) -> tuple[float, str]:
    if given is not None:
        return given, f"discordance {given:g} (given)"
    if len(bases) > 1 and rule.metric.metric in BINARY_PREDICTION_METRICS:
        values = [extract(run, rule) for run in bases]
        maps = [v.values for v in values if isinstance(v, ExampleValues)]
        if len(maps) == len(bases):
            pairs = [
                np.mean([maps[i][k] != maps[j][k] for k in maps[i] if k in maps[j]])
                for i in range(len(maps))
                for j in range(i + 1, len(maps))
            ]
            psi = float(np.mean(pairs))
            return psi, f"discordance {psi:.3g} measured between {len(maps)} baseline replicates"
    return DEFAULT_DISCORDANCE, (
        f"discordance assumed {DEFAULT_DISCORDANCE:g} (pass --discordance, or two baseline "
        "replicate runs to measure it)"
    )


def plan_rule(
    rule: Rule, policy: Policy, bases: list[RunData], family: int, discordance: float | None
) -> PlanRow:
    s = settings_for(policy, rule, family)
    base = bases[0] if bases else None
    baseline_value = _baseline_value(base, rule)
    try:
        effect = rule.check.allowed(baseline_value if baseline_value is not None else 0.0)  # type: ignore[union-attr]
    except AttributeError:
        effect = None
    if effect is None or (getattr(rule.check, "unit", "") == "pct" and baseline_value is None):
        return PlanRow(rule.name, None, "-", None, "examples", "a % tolerance needs --baseline")
    if effect <= 0:
        return PlanRow(rule.name, effect, "-", None, "examples", "a tolerance of 0: no n detects it")
    try:
        return _plan(rule, s, bases, effect, discordance)
    except Unusable as exc:
        return PlanRow(rule.name, effect, "-", None, "examples", str(exc))


def _baseline_value(base: RunData | None, rule: Rule) -> float | None:
    if base is None:
        return None
    suite = base.record.suite(rule.metric.suite)
    metric = None if suite is None else suite.metric(rule.metric.metric)
    return None if metric is None else metric.value


def _plan(
    rule: Rule, s: EvidenceSettings, bases: list[RunData], effect: float, discordance: float | None
) -> PlanRow:
    extracted = [extract(run, rule) for run in bases]
    first = extracted[0] if extracted else None
    second = extracted[1] if len(extracted) > 1 else None
    row = _row_factory(rule, effect, _current_n(first))
    name = rule.metric.metric
    as_accuracy = name.split(".")[0].removesuffix("_macro") in TABLE_METRICS
    if (first is None and (name in BINARY_PREDICTION_METRICS or as_accuracy)) or (
        isinstance(first, ExampleValues) and first.binary
    ):
        psi, basis = _discordance(bases, rule, discordance)
        words = f"planned as accuracy; {basis}" if as_accuracy else basis
        test = "TOST (Tango interval)" if rule.is_equivalence else "exact McNemar"
        return row(test, _binary_n(effect, psi, s, rule.is_equivalence), "examples", words)
    if isinstance(first, ExampleValues) and isinstance(second, ExampleValues):
        return _plan_continuous(first, second, s, effect, row)
    if isinstance(first, TableValues):
        return _plan_table(rule, first, second, s, effect, bases, discordance, row)
    if isinstance(first, SampleValues):
        se = _bootstrap_se(first.samples, first.quantile, s.seed)
        n = _scaled_n(first.samples.size, math.sqrt(2) * se, effect, s)
        basis = (
            f"bootstrap se of the q={first.quantile:g} quantile in the baseline ({se:.3g}), "
            "scaled by sqrt(n0/n)"
        )
        return row("two-sample permutation", n, "samples per run", basis)
    return _plan_from_interval(rule, s, bases, effect)


Row = Callable[[str, "int | None", str, str], PlanRow]


def _row_factory(rule: Rule, effect: float, current: int | None) -> Row:
    def row(test: str, n: int | None, unit: str, basis: str) -> PlanRow:
        return PlanRow(rule.name, effect, test, n, unit, basis, current)

    return row


def _plan_continuous(
    first: ExampleValues, second: ExampleValues, s: EvidenceSettings, effect: float, row: Row
) -> PlanRow:
    d = np.asarray([second.values[k] - v for k, v in first.values.items() if k in second.values])
    sd = float(d.std(ddof=1)) if d.size > 1 else 0.0

    def detects(m: int) -> bool:
        mde = paired.t_mde(m, sd, alpha=s.alpha_power, power=s.power)
        return mde is not None and mde <= effect

    basis = f"sd of per-example differences {sd:.3g} between two baseline replicates"
    return row("sign-flip permutation", smallest_n(detects), "examples", basis)


def _plan_table(
    rule: Rule,
    first: TableValues,
    second: Extracted | None,
    s: EvidenceSettings,
    effect: float,
    bases: list[RunData],
    discordance: float | None,
    row: Row,
) -> PlanRow:
    if isinstance(second, TableValues):
        pb, pc = aligned(first.table, second.table)
        null = randomization_result(first.metric, pb, pc, first.k, s).null_sd or 0.0
        basis = "randomization null between two baseline replicates, scaled by sqrt(n0/n)"
        return row("paired randomization", _scaled_n(len(pb.ids), null, effect, s), "examples", basis)
    psi, basis = _discordance(bases, rule, discordance)
    n = _binary_n(effect, psi, s, rule.is_equivalence)
    return row("paired randomization", n, "examples", f"planned as accuracy; {basis}")


def _current_n(x: Any) -> int | None:
    if isinstance(x, ExampleValues):
        return len(x.values)
    if isinstance(x, TableValues):
        return len(x.table.ids)
    if isinstance(x, SampleValues):
        return int(x.samples.size)
    return None


def _bootstrap_se(samples: Any, q: float, seed: int) -> float:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, samples.size, size=(1000, samples.size))
    return float(np.quantile(samples[idx], q, axis=1).std(ddof=1))


def _plan_from_interval(rule: Rule, s: EvidenceSettings, bases: list[RunData], effect: float) -> PlanRow:
    suite = bases[0].record.suite(rule.metric.suite) if bases else None
    metric = None if suite is None else suite.metric(rule.metric.metric)
    if metric is None or metric.ci_low is None or metric.ci_high is None or not metric.n:
        why = "needs a baseline run with per-example data or an interval for this metric"
        return PlanRow(rule.name, effect, "-", None, "examples", why)
    from scipy.stats import norm

    se = (metric.ci_high - metric.ci_low) / (2 * float(norm.ppf(0.975)))
    n = _scaled_n(metric.n, math.sqrt(2) * se, effect, s)
    return PlanRow(rule.name, effect, "CI overlap", n, "examples", "the baseline record's 95% interval, scaled by sqrt(n0/n) (no per-example data)", metric.n)


def plan(policy: Policy, bases: list[RunData], *, discordance: float | None = None) -> list[PlanRow]:
    family = max(1, sum(1 for r in policy.rules if r.significant))
    return [
        plan_rule(rule, policy, bases, family, discordance)
        for rule in policy.rules
        if not isinstance(rule.check, BoundCheck)
    ]
