"""What the gate's evidence is: the settings one rule is judged at and the result of its test.

Shared by every kind of evidence (``evidence``, ``randomization``, ``replicates``) and by the
decisions (``decide``) and outputs that read them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from harness import stats
from harness.gate.policy import Policy
from harness.gate.rules import Rule


@dataclass(frozen=True)
class EvidenceSettings:
    """What the gate asks of one rule's evidence."""

    alpha: float  # the rule's level; p-values are raw here and corrected by the gate
    alpha_power: float  # the level at which power and the minimum n are judged
    power: float
    n_perm: int
    n_boot: int
    seed: int
    equivalence_alpha: float | None = None  # `within` rules: the (1 - 2 alpha) interval


@dataclass(frozen=True)
class TestResult:
    """The evidence for one comparative rule (all differences are candidate − baseline)."""

    method: str
    p_value: float | None  # raw, before correction; None when no test could run
    n: int | None = None  # examples (pairs) or samples behind the test
    diff_low: float | None = None  # 95% interval of the difference
    diff_high: float | None = None
    significant_by_ci: bool | None = None  # fallback decision when there is no p-value
    note: str | None = None
    kind: str = "none"  # binary | continuous | randomization | two-sample | intervals | none
    informative: int | None = None  # examples whose outcome differs between the runs
    min_informative: int | None = None  # fewest informative examples that can reach the level
    estimate: float | None = None  # the difference on the compared examples
    baseline_value: float | None = None  # the metric on the compared examples
    candidate_value: float | None = None
    mde: float | None = None  # smallest |change| detected with the asked power; None: none
    mde_basis: str | None = None
    equivalence_low: float | None = None  # (1 - 2 alpha) interval, for `within` rules
    equivalence_high: float | None = None
    interval_method: str | None = None
    null_sd: float | None = None  # spread of the test's null distribution (for --plan)

    @property
    def too_few(self) -> bool:
        """Below the test's minimum: it could not reach its level whatever the data said."""
        return (
            self.informative is not None
            and self.min_informative is not None
            and self.informative < self.min_informative
        )


def with_intervals(result: TestResult, ci: stats.Interval, eq: stats.Interval | None) -> TestResult:
    return replace(
        result,
        interval_method=ci.method,
        diff_low=ci.low,
        diff_high=ci.high,
        equivalence_low=None if eq is None else eq.low,
        equivalence_high=None if eq is None else eq.high,
    )


def settings_for(policy: Policy, rule: Rule, family_size: int) -> EvidenceSettings:
    """The levels one rule is judged at: power and minimum n at alpha / m under Holm (the level
    Holm's first step applies), so a rule is not called powerful on a level it may not get."""
    alpha = policy.alpha_for(rule)
    holm = policy.correction == "holm" and rule.significant and family_size > 1
    return EvidenceSettings(
        alpha=alpha,
        alpha_power=alpha / family_size if holm else alpha,
        power=policy.power,
        n_perm=policy.n_perm,
        n_boot=policy.n_boot,
        seed=policy.seed,
        equivalence_alpha=alpha if rule.is_equivalence else None,
    )
