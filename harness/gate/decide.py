"""From evidence to a verdict: significance, power and equivalence in words.

A comparative rule's verdict is one of

* ``fail`` — the candidate is worse than tolerated (a plain rule), and, for a ``significant``
  rule, the change is also significant after the family's correction;
* ``pass`` — within tolerance, and the test could have seen a regression of the tolerated size
  (its minimum detectable effect, MDE, at the policy's power is at most the tolerance);
* ``inconclusive`` — the data cannot tell: fewer informative examples than the test needs to
  reach its level, or an MDE larger than the tolerance ("could only detect a change of X").
  A test that cannot reach significance never fails a rule.

An equivalence rule (``within M``, two one-sided tests) passes only when the (1 − 2α) interval
of the paired difference lies inside ±M, fails when the interval lies wholly outside, and is
inconclusive otherwise.
"""

from __future__ import annotations

from dataclasses import replace

from harness.gate.result import EvidenceSettings, TestResult
from harness.gate.rules import EquivalenceCheck
from harness.gate.verdict import RuleVerdict, Status

EPS = 1e-12
# Kinds whose interval can collapse to a point on few informative examples (a bootstrap of
# identical outputs): equivalence there also needs the power to see a change of the margin.
COLLAPSIBLE = {"randomization", "intervals", "two-sample"}


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _power_words(test: TestResult, s: EvidenceSettings, n: int | None, *, weak: bool = False) -> str:
    at = f"power {s.power:g} at α = {s.alpha_power:.3g}"
    size = "" if n is None else f" at n = {n}"
    if test.mde is None:
        return f"no change is detectable{size} ({at})"
    verb = "could only detect" if weak else "detects"
    return f"the test {verb} a change of {_fmt(test.mde)}{size} ({at}; {test.mde_basis})"


def _too_few_words(test: TestResult, s: EvidenceSettings) -> str:
    return (
        f"only {test.informative} of {test.n} examples differ between the runs; "
        f"{test.method} needs at least {test.min_informative} to reach α = {s.alpha_power:.3g}"
    )


def _paired_values(verdict: RuleVerdict, test: TestResult) -> RuleVerdict:
    """Judge the tolerance on the examples the test compared (both runs scored them)."""
    if test.estimate is None or test.kind in ("none", "intervals"):
        return verdict
    allowed = verdict.rule.check.allowed(test.baseline_value or 0.0)  # type: ignore[union-attr]
    return replace(verdict, change=test.estimate, allowed=allowed)


def _significance(
    test: TestResult, p_adj: float | None, s: EvidenceSettings, correction: str
) -> tuple[bool | None, str]:
    if p_adj is not None:
        significant = p_adj < s.alpha
        label = "Holm-adjusted p" if correction == "holm" and p_adj != test.p_value else "p"
        return significant, (
            f"{test.method}: {label} = {p_adj:.3g} {'<' if significant else '≥'} α = {s.alpha:g}"
        )
    if test.significant_by_ci is not None:
        overlap = "do not overlap" if test.significant_by_ci else "overlap"
        return test.significant_by_ci, f"95% intervals {overlap} (no per-example data)"
    return None, "significance could not be tested"


def decide(
    verdict: RuleVerdict,
    test: TestResult,
    p_adj: float | None,
    s: EvidenceSettings,
    correction: str,
) -> RuleVerdict:
    """The verdict of one comparative rule from its first pass and its evidence."""
    verdict = replace(
        _paired_values(verdict, test),
        test=test,
        p_adjusted=p_adj,
        alpha=s.alpha,
        power=s.power,
        alpha_power=s.alpha_power,
    )
    if isinstance(verdict.rule.check, EquivalenceCheck):
        return _equivalence(verdict, test, s)
    return _regression(verdict, test, p_adj, s, correction)


def _regression(
    verdict: RuleVerdict,
    test: TestResult,
    p_adj: float | None,
    s: EvidenceSettings,
    correction: str,
) -> RuleVerdict:
    change, allowed = verdict.change or 0.0, verdict.allowed or 0.0
    worsening = -change if verdict.higher_is_better else change
    exceeded = worsening > allowed + EPS
    where = "" if test.n is None else f" on {test.n} compared examples"
    message = (
        f"change {change:+.4g}{where} (worse by {max(worsening, 0.0):.4g}; tolerated "
        f"{allowed:.4g})"
    )
    power = _power_words(test, s, test.n)
    weak = test.mde is None or test.mde > allowed + EPS
    if verdict.rule.significant:
        significant, evidence = _significance(test, p_adj, s, correction)
        if exceeded and significant:
            return _status(verdict, "fail", f"{message}; significant: {evidence}")
        if test.too_few:
            return _status(verdict, "inconclusive", f"{message}; inconclusive: {_too_few_words(test, s)}")
        if significant is None and exceeded:
            return _status(verdict, "inconclusive", f"{message}; inconclusive: {evidence}")
        tail = f"{message}, {'but ' if exceeded else ''}not significant: {evidence}"
    else:
        if exceeded:
            return _status(verdict, "fail", f"{message}; {power}")
        tail = message
    if weak:
        power = _power_words(test, s, test.n, weak=True)
        return _status(
            verdict,
            "inconclusive",
            f"{tail}; inconclusive: {power}, more than the tolerated {allowed:.4g}",
        )
    return _status(verdict, "pass", f"{tail}; {power}")


def _equivalence(verdict: RuleVerdict, test: TestResult, s: EvidenceSettings) -> RuleVerdict:
    margin = verdict.allowed or 0.0
    low, high = test.equivalence_low, test.equivalence_high
    level = f"{100 * (1 - 2 * s.alpha):g}%"
    head = f"change {(verdict.change or 0.0):+.4g}; equivalence margin ±{margin:.4g}"
    if low is None or high is None:
        return _status(
            verdict, "inconclusive", f"{head}; inconclusive: no {level} interval of the difference"
        )
    interval = f"{level} interval [{low:.4g}, {high:.4g}] ({test.interval_method})"
    if low > margin + EPS or high < -margin - EPS:
        return _status(verdict, "fail", f"{head}; not equivalent: the {interval} lies outside")
    if -margin < low and high < margin:
        if test.kind in COLLAPSIBLE and (test.mde is None or test.mde > margin + EPS):
            return _status(
                verdict,
                "inconclusive",
                f"{head}; the {interval} lies inside, but {_power_words(test, s, test.n)}: "
                "the interval may be too narrow to trust",
            )
        return _status(verdict, "pass", f"{head}; equivalent: the {interval} lies inside")
    return _status(
        verdict, "inconclusive", f"{head}; inconclusive: the {interval} crosses the margin"
    )


def _status(verdict: RuleVerdict, status: Status, message: str) -> RuleVerdict:
    return replace(verdict, status=status, message=message)
