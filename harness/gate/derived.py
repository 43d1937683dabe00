"""The policy ``harness gate`` uses when no ``--policy`` is given: one rule per headline metric
that the baseline's suites declare (``SuiteCapabilities.headline``, copied into each record).

So a new suite is gated as soon as it declares a headline, and nothing here names a suite.
Each derived rule is a significant-regression rule, failing only when the candidate is worse
by more than the tolerance *and* the change is significant after Holm's correction:

- a proportion (a value in [0, 1] recorded with an interval, e.g. accuracy, flip rate):
  ``-{PROPORTION_TOLERANCE_PT}pt significant``;
- any other figure (milliseconds, counts, scores): ``{RELATIVE_TOLERANCE_PCT}%`` relative.

The direction of "worse" comes from each metric's ``higher_is_better``; a headline metric
without one is left out (with a note), as are suites that did not finish and figures that
measure the machine rather than the model (``measures_machine``: latency differs between two
machines running the same model, so it is gated only when a policy asks for it).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.gate.policy import Policy, parse_policy
from harness.records import Metric, RunRecord

PROPORTION_TOLERANCE_PT = 1.0
RELATIVE_TOLERANCE_PCT = 10.0
SOURCE = "<derived from the baseline's headline metrics>"
MSG_DERIVED = "no --policy given: rules derived from each suite's declared headline metric"
MSG_NO_HEADLINES = (
    "no --policy given and the baseline declares no headline metric that can be gated; "
    "write a policy file (see harness.gate.policy)"
)


@dataclass(frozen=True)
class DerivedPolicy:
    policy: Policy
    notes: tuple[str, ...]  # what was left out, and why


def _is_proportion(metric: Metric) -> bool:
    v, lo, hi = metric.value, metric.ci_low, metric.ci_high
    return (
        v is not None
        and lo is not None
        and hi is not None
        and all(0 <= x <= 1 for x in (v, lo, hi))
    )


def rule_for(suite: str, metric: Metric) -> str:
    """The derived rule text for one headline metric."""
    if _is_proportion(metric):
        return f"{suite}.{metric.name}: {PROPORTION_TOLERANCE_PT:g}pt significant"
    return f"{suite}.{metric.name}: {RELATIVE_TOLERANCE_PCT:g}% significant"


def derive_policy(baseline: RunRecord) -> DerivedPolicy:
    """Rules for every headline metric of the baseline's finished suites.

    Every metric that matches a suite's headline counts (the robustness suite's headline
    ``attack_success_rate`` names one metric per recipe).
    """
    from harness.errors import ConfigError

    rules: list[str] = []
    notes: list[str] = []
    for suite in baseline.suites:
        caps = suite.caps()
        if suite.status != "ok" or caps.headline is None:
            continue
        if caps.measures_machine:
            notes.append(f"{suite.name}: not gated by default (its figures measure the machine)")
            continue
        hint = caps.headline
        matched = [m for m in suite.metrics if m.name == hint or m.name.endswith("." + hint)]
        for metric in matched:
            if metric.higher_is_better is None or metric.value is None:
                notes.append(f"{suite.name}.{metric.name}: left out (no direction or no value)")
                continue
            rules.append(rule_for(suite.name, metric))
    if not rules:
        raise ConfigError(MSG_NO_HEADLINES)
    return DerivedPolicy(parse_policy({"rules": rules}, source=SOURCE), tuple(notes))
