"""The CI gate: compare a candidate run with a baseline under a policy of typed rules.

A regression rule fails when the candidate is worse than the baseline by more than the
tolerance; with ``significant`` it fails only when, in addition, the change is statistically
significant at the rule's alpha after Holm's correction across all such rules. The tests
(paired on per-example outcomes whenever the runs carry them) live in ``gate_evidence``.

Records whose evaluation split, label set, examples or suite versions / parameters differ are
refused (exit 2) unless ``allow_mismatch``; then the verdict lists each difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness import stats
from harness.errors import ExitCode, HarnessError
from harness.gate_data import RunData, load_run
from harness.gate_evidence import TestResult, significance_test
from harness.gate_rules import BoundCheck, Policy, RegressionCheck, Rule
from harness.records import Metric

Status = Literal["pass", "fail", "error"]
EPS = 1e-12
UNIT_SUFFIX = {"abs": "", "pt": "pt", "pct": "%"}
MSG_MISMATCH = (
    "refusing to compare {baseline} with {candidate}: the runs are not comparable:\n{listing}\n"
    "(pass --allow-mismatch to compare anyway; the verdict will say so)"
)


class GateError(HarnessError):
    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class RuleVerdict:
    rule: Rule
    status: Status
    message: str
    baseline: float | None = None
    candidate: float | None = None
    change: float | None = None  # candidate − baseline
    allowed: float | None = None  # tolerated worsening, in the metric's unit
    higher_is_better: bool | None = None
    test: TestResult | None = None
    p_adjusted: float | None = None
    alpha: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule.name,
            "where": self.rule.where,
            "metric": str(self.rule.metric),
            "kind": "bound" if isinstance(self.rule.check, BoundCheck) else "regression",
            "significant_required": self.rule.significant,
            "status": self.status,
            "message": self.message,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "change": self.change,
            "allowed_worsening": self.allowed,
            "higher_is_better": self.higher_is_better,
            "test": None
            if self.test is None
            else {
                "method": self.test.method,
                "p_value": self.test.p_value,
                "p_adjusted": self.p_adjusted,
                "alpha": self.alpha,
                "n": self.test.n,
                "diff_ci": [self.test.diff_low, self.test.diff_high],
                "note": self.test.note,
            },
        }


@dataclass(frozen=True)
class GateVerdict:
    baseline: str
    candidate: str
    policy: str
    rules: tuple[RuleVerdict, ...]
    correction: str
    mismatches: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def status(self) -> Status:
        if any(r.status == "error" for r in self.rules):
            return "error"
        return "fail" if any(r.status == "fail" for r in self.rules) else "pass"

    @property
    def exit_code(self) -> int:
        return {"pass": ExitCode.OK, "fail": ExitCode.REGRESSION, "error": ExitCode.USAGE}[
            self.status
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "exit_code": int(self.exit_code),
            "baseline": self.baseline,
            "candidate": self.candidate,
            "policy": self.policy,
            "correction": self.correction,
            "allowed_mismatches": list(self.mismatches),
            "notes": list(self.notes),
            "rules": [r.to_json() for r in self.rules],
        }


# ------------------------------------------------------------------ comparability


def find_mismatches(base: RunData, cand: RunData, suites: set[str]) -> list[str]:
    """Every reason the two runs are not measuring the same thing."""
    out: list[str] = []
    b, c = base.record, cand.record
    if b.dataset.eval_split != c.dataset.eval_split:
        out.append(
            f"evaluation split differs: {b.dataset.eval_split!r} vs {c.dataset.eval_split!r}"
        )
    bs, cs = b.dataset.split(b.dataset.eval_split), c.dataset.split(c.dataset.eval_split)
    if bs is not None and cs is not None and bs.sha256 != cs.sha256:
        out.append(f"dataset split digest differs: {bs.sha256[:12]}… vs {cs.sha256[:12]}…")
    if list(b.dataset.label_names) != list(c.dataset.label_names):
        out.append(f"label set differs: {b.dataset.label_names} vs {c.dataset.label_names}")
    for name in sorted(suites):
        sb, sc = b.suite(name), c.suite(name)
        if sb is None or sc is None:
            continue  # reported per rule
        if sb.version != sc.version:
            out.append(f"suite {name!r} version differs: {sb.version} vs {sc.version}")
        if sb.params != sc.params:
            keys = sorted(
                k for k in set(sb.params) | set(sc.params) if sb.params.get(k) != sc.params.get(k)
            )
            shown = ", ".join(f"{k}: {sb.params.get(k)!r} vs {sc.params.get(k)!r}" for k in keys)
            out.append(f"suite {name!r} parameters differ ({shown})")
    if base.has_predictions() and cand.has_predictions():
        ib, ic = set(base.predictions().ids), set(cand.predictions().ids)
        if ib != ic:
            out.append(
                f"evaluated examples differ: {len(ib - ic)} only in the baseline, "
                f"{len(ic - ib)} only in the candidate"
            )
    return out


# ------------------------------------------------------------------ evaluation


def _lookup(run: RunData, rule: Rule, role: str) -> tuple[Metric | None, str | None]:
    suite = run.record.suite(rule.metric.suite)
    if suite is None:
        known = ", ".join(s.name for s in run.record.suites) or "none"
        return None, f"the {role} record has no suite {rule.metric.suite!r} (suites: {known})"
    if suite.status != "ok":
        return (
            None,
            f"suite {rule.metric.suite!r} did not finish in the {role} run "
            f"({suite.status}: {suite.error})",
        )
    metric = suite.metric(rule.metric.metric)
    if metric is None:
        known = ", ".join(m.name for m in suite.metrics)
        return (
            None,
            f"the {role} suite {rule.metric.suite!r} has no metric {rule.metric.metric!r} "
            f"(metrics: {known})",
        )
    if metric.value is None:
        return None, f"the {role} value of {rule.metric} is undefined (null)"
    return metric, None


def _first_pass(base: RunData, cand: RunData, rule: Rule) -> RuleVerdict:
    """Everything but the significance decision; regression rules that need a test stay 'pass'."""
    mc, problem = _lookup(cand, rule, "candidate")
    if mc is None or mc.value is None:
        return RuleVerdict(rule, "error", problem or "")
    if isinstance(rule.check, BoundCheck):
        ok = rule.check.holds(mc.value)
        verb = "meets" if ok else "breaks"
        return RuleVerdict(
            rule,
            "pass" if ok else "fail",
            f"{mc.value:.6g} {verb} the bound {rule.check.describe()}",
            candidate=mc.value,
            higher_is_better=mc.higher_is_better,
        )
    mb, problem = _lookup(base, rule, "baseline")
    if mb is None or mb.value is None:
        return RuleVerdict(rule, "error", problem or "")
    check: RegressionCheck = rule.check
    hib = mc.higher_is_better
    if hib is None:
        return RuleVerdict(
            rule, "error", f"{rule.metric} has no direction (higher_is_better is null); use a bound"
        )
    if check.sign is not None and (check.sign == "-") != hib:
        word = "decrease" if check.sign == "-" else "increase"
        better = "higher" if hib else "lower"
        return RuleVerdict(
            rule,
            "error",
            f"the sign says a regression is a {word}, but {better} is better for {rule.metric}; "
            f"write {'-' if hib else '+'}{check.tolerance:g}{UNIT_SUFFIX[check.unit]}",
        )
    change = mc.value - mb.value
    worsening = -change if hib else change
    allowed = check.allowed(mb.value)
    exceeded = worsening > allowed + EPS
    base_fields: dict[str, Any] = {
        "baseline": mb.value,
        "candidate": mc.value,
        "change": change,
        "allowed": allowed,
        "higher_is_better": hib,
    }
    msg = f"change {change:+.6g} (worse by {max(worsening, 0.0):.6g}; tolerated {allowed:.6g})"
    return RuleVerdict(rule, "fail" if exceeded else "pass", msg, **base_fields)


def evaluate(
    base: RunData, cand: RunData, policy: Policy, *, allow_mismatch: bool = False
) -> GateVerdict:
    suites = {r.metric.suite for r in policy.rules}
    mismatches = find_mismatches(base, cand, suites)
    if mismatches and not allow_mismatch:
        listing = "\n".join(f"  - {m}" for m in mismatches)
        raise GateError(
            MSG_MISMATCH.format(baseline=base.path, candidate=cand.path, listing=listing)
        )
    first = [_first_pass(base, cand, rule) for rule in policy.rules]
    # Significance: test every rule that asks for it (the Holm family is all of them, whether or
    # not their point estimate breaks the tolerance), then correct across the family.
    tests: dict[int, TestResult] = {}
    for i, (rule, verdict) in enumerate(zip(policy.rules, first, strict=True)):
        if rule.significant and verdict.status != "error" and verdict.baseline is not None:
            tests[i] = significance_test(base, cand, rule, policy)
    family = [i for i, t in tests.items() if t.p_value is not None]
    raw = [tests[i].p_value or 0.0 for i in family]
    adjusted = stats.holm(raw) if policy.correction == "holm" else raw
    p_adj = dict(zip(family, adjusted, strict=True))
    verdicts = []
    for i, (rule, verdict) in enumerate(zip(policy.rules, first, strict=True)):
        if i not in tests:
            verdicts.append(verdict)
            continue
        verdicts.append(
            _decide(verdict, tests[i], p_adj.get(i), policy.alpha_for(rule), policy.correction)
        )
    notes = [f"compared despite mismatches (--allow-mismatch): {m}" for m in mismatches]
    for v in verdicts:
        if v.test is not None and v.test.p_value is None and v.test.note:
            notes.append(f"{v.rule.name}: {v.test.note}")
    return GateVerdict(
        baseline=str(base.path),
        candidate=str(cand.path),
        policy=policy.source,
        rules=tuple(verdicts),
        correction=policy.correction,
        mismatches=tuple(mismatches),
        notes=tuple(notes),
    )


def _decide(
    verdict: RuleVerdict, test: TestResult, p_adj: float | None, alpha: float, correction: str
) -> RuleVerdict:
    extra: dict[str, Any] = {"test": test, "p_adjusted": p_adj, "alpha": alpha}
    if p_adj is not None:
        significant = p_adj < alpha
        label = "Holm-adjusted p" if correction == "holm" else "p"
        evidence = (
            f"{test.method}: {label} = {p_adj:.3g} {'<' if significant else '≥'} α = {alpha:g}"
        )
    elif test.significant_by_ci is not None:
        significant = test.significant_by_ci
        evidence = (
            f"95% intervals {'do not overlap' if significant else 'overlap'} (no per-example data)"
        )
    else:
        significant = True
        evidence = "significance could not be tested"
    fields = {
        k: getattr(verdict, k)
        for k in ("baseline", "candidate", "change", "allowed", "higher_is_better")
    }
    if verdict.status == "pass":
        return RuleVerdict(
            verdict.rule, "pass", f"{verdict.message}; {evidence}", **fields, **extra
        )
    if significant:
        return RuleVerdict(
            verdict.rule, "fail", f"{verdict.message}; significant: {evidence}", **fields, **extra
        )
    return RuleVerdict(
        verdict.rule,
        "pass",
        f"{verdict.message}, but not significant: {evidence}",
        **fields,
        **extra,
    )


def run_gate(
    baseline: Path, candidate: Path, policy: Policy, *, allow_mismatch: bool = False
) -> GateVerdict:
    return evaluate(load_run(baseline), load_run(candidate), policy, allow_mismatch=allow_mismatch)
