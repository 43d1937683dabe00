"""The challenger comparison: ``harness report RUN --challenger OTHER_RUN``.

SR 11-7 asks for benchmarking against challenger models. This compares every metric the two
records share with the gate's own statistics: one gate rule per metric
(``SUITE.METRIC: 0 significant``: any significant worsening of the challenger fails), evaluated by
``harness.gate.evaluate`` with the gate's paired tests, power and Holm correction across all the
rules. The report therefore says exactly what ``harness gate --baseline RUN --candidate OTHER
--policy P`` says, with ``P`` the policy printed in the section (``policy_yaml``); a test checks
that the two agree. Nothing here computes a statistic of its own.

A metric is "better" in one run when its paired change is significant after Holm (or, without
per-example data, when the records' intervals do not overlap) in that run's favour. Metrics
without a direction (counts, settings) are shown side by side without a test, and so are those
whose names the gate's rule language cannot spell (e.g. ``bias.swaps.race:white.flip_rate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from harness.errors import ConfigError
from harness.gate.evaluate import evaluate
from harness.gate.inputs import RunData, load_run
from harness.gate.policy import Policy
from harness.gate.rules import Rule, parse_rule
from harness.gate.verdict import GateVerdict, RuleVerdict
from harness.records import Metric, RunRecord

Better = Literal["champion", "challenger", "neither", "untested"]
ALPHA = 0.05
POLICY_SOURCE = "harness report --challenger"


@dataclass(frozen=True)
class MetricPair:
    """One shared metric: both values, and the gate's verdict on it when it could be tested."""

    suite: str
    metric: str
    champion: Metric
    challenger: Metric
    verdict: RuleVerdict | None
    better: Better
    why_untested: str | None = None


@dataclass(frozen=True)
class ChallengerComparison:
    champion: Path
    challenger: Path
    champion_record: RunRecord
    challenger_record: RunRecord
    pairs: tuple[MetricPair, ...]
    verdict: GateVerdict | None
    policy: Policy | None
    only_champion: int  # metrics in one run only
    only_challenger: int

    def count(self, better: Better) -> int:
        return sum(1 for p in self.pairs if p.better == better)

    def policy_yaml(self) -> str:
        """The gate policy that reproduces this comparison with ``harness gate``."""
        if self.policy is None:
            return ""
        p = self.policy
        body = {
            "alpha": p.alpha, "correction": p.correction, "power": p.power,
            "on_inconclusive": p.on_inconclusive, "n_perm": p.n_perm, "n_boot": p.n_boot,
            "seed": p.seed, "rules": [r.text for r in p.rules],
        }  # fmt: skip
        head = (
            f"# harness gate --baseline {self.champion} --candidate {self.challenger} "
            "--policy THIS_FILE reproduces the challenger comparison\n"
        )
        return head + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


def _rule(suite: str, metric: str) -> Rule | None:
    """The gate rule for one metric, or None when the rule language cannot name it."""
    text = f"{suite}.{metric}: 0 significant"
    try:
        rule = parse_rule(text, where=f"{suite}.{metric}", source=POLICY_SOURCE)
    except ConfigError:
        return None
    return rule if (rule.metric.suite, rule.metric.metric) == (suite, metric) else None


def _better(v: RuleVerdict) -> Better:
    test = v.test
    if test is None:
        return "untested"
    if v.p_adjusted is not None:
        significant: bool | None = v.p_adjusted < (v.alpha if v.alpha is not None else ALPHA)
    else:
        significant = test.significant_by_ci
    if significant is None:
        return "untested"
    change = v.change if v.change is not None else test.estimate
    if not significant or not change:
        return "neither"
    improved = change > 0 if v.higher_is_better else change < 0
    return "challenger" if improved else "champion"


def _shared(a: RunRecord, b: RunRecord) -> tuple[list[tuple[str, Metric, Metric]], int, int]:
    """(suite, champion metric, challenger metric) for every metric both finished suites have,
    and how many metrics only one run has."""
    def keys(r: RunRecord) -> set[tuple[str, str]]:
        return {(s.name, m.name) for s in r.suites if s.status == "ok" for m in s.metrics}

    both = keys(a) & keys(b)
    pairs = []
    for suite in a.suites:
        other = b.suite(suite.name)
        for m in suite.metrics:
            mb = other.metric(m.name) if other is not None else None
            if (suite.name, m.name) in both and mb is not None:
                pairs.append((suite.name, m, mb))
    return pairs, len(keys(a) - both), len(keys(b) - both)


def _untested_reason(ma: Metric, mb: Metric, rule: Rule | None) -> str | None:
    if ma.value is None or mb.value is None:
        return "undefined (null) in one run"
    if ma.higher_is_better is None or mb.higher_is_better is None:
        return "not a score (no direction)"
    if ma.higher_is_better != mb.higher_is_better:
        return "the runs disagree on its direction"
    if rule is None:
        return "its name cannot be written as a gate rule"
    return None


def compare(
    champion: Path, challenger: Path, *, allow_mismatch: bool = False
) -> ChallengerComparison:
    """Every shared metric of two runs, tested as the gate tests it."""
    base, cand = load_run(champion), load_run(challenger)
    return compare_runs(base, cand, allow_mismatch=allow_mismatch)


def compare_runs(base: RunData, cand: RunData, *, allow_mismatch: bool = False) -> ChallengerComparison:
    shared, only_a, only_b = _shared(base.record, cand.record)
    rules: list[Rule] = []
    reasons: list[str | None] = []
    for suite, ma, mb in shared:
        rule = _rule(suite, ma.name)
        why = _untested_reason(ma, mb, rule)
        reasons.append(why)
        if why is None and rule is not None:
            rules.append(rule)
    policy = Policy(rules=tuple(rules), alpha=ALPHA, source=POLICY_SOURCE) if rules else None
    verdict = evaluate(base, cand, policy, allow_mismatch=allow_mismatch) if policy else None
    by_rule = {v.rule.text: v for v in verdict.rules} if verdict else {}
    pairs = []
    for (suite, ma, mb), why in zip(shared, reasons, strict=True):
        v = by_rule.get(f"{suite}.{ma.name}: 0 significant") if why is None else None
        pairs.append(
            MetricPair(suite, ma.name, ma, mb, v, _better(v) if v else "untested", why)
        )
    return ChallengerComparison(
        champion=base.path, challenger=cand.path, champion_record=base.record,
        challenger_record=cand.record, pairs=tuple(pairs), verdict=verdict, policy=policy,
        only_champion=only_a, only_challenger=only_b,
    )  # fmt: skip
