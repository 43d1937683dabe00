"""The CI gate: compare a candidate run with a baseline under a policy of typed rules.

A regression rule fails when the candidate is worse than the baseline by more than the
tolerance; with ``significant`` it fails only when, in addition, the change is statistically
significant at the rule's alpha after Holm's correction across all such rules. Every
comparative rule states its power; one that cannot tell is ``inconclusive``
(``decide``). The tests (paired on per-example outcomes whenever the runs carry them) live
in ``evidence``; sets of replicate runs (several seeds per side) in ``replicates``.

Records whose evaluation split, label set, examples or suite versions / parameters differ are
refused (exit 2) unless ``allow_mismatch``; then the verdict lists each difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from harness import stats
from harness.errors import ExitCode, HarnessError
from harness.gate.decide import decide
from harness.gate.evidence import significance_test
from harness.gate.inputs import RunData, load_run
from harness.gate.policy import Policy
from harness.gate.replicates import SideSummary, replicate_result, side_values
from harness.gate.result import EvidenceSettings, TestResult, settings_for
from harness.gate.rules import BoundCheck, Rule
from harness.gate.verdict import GateVerdict, RuleVerdict
from harness.records import Metric

EPS = 1e-12
UNIT_SUFFIX = {"abs": "", "pt": "pt", "pct": "%"}
MSG_MISMATCH = (
    "refusing to compare {baseline} with {candidate}: the runs are not comparable:\n{listing}\n"
    "(pass --allow-mismatch to compare anyway; the verdict will say so)"
)


class GateError(HarnessError):
    exit_code = ExitCode.USAGE


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


def precision_notes(base: RunData, cand: RunData) -> list[str]:
    """What the gate says when the runs were evaluated in different precisions. Not a refusal:
    gating a bf16 evaluation against an fp32 baseline is a fair question, but part of any
    difference is then the precision's, and the reader must be told how large the candidate's own
    fp32 agreement probe found it. A record without the field predates reduced precision (fp32)."""
    b_prec, c_prec = _evaluated_in(base), _evaluated_in(cand)
    out: list[str] = []
    if b_prec != c_prec:
        out.append(
            f"evaluation precision differs: {b_prec} in {base.path} vs {c_prec} in {cand.path}; "
            "part of any difference is the precision's"
        )
    for run in (base, cand):
        probe = (run.record.model.precision or {}).get("agreement") or {}
        if probe.get("warning"):
            out.append(f"{run.path}: {probe['warning']}")
        elif b_prec != c_prec and probe.get("agreement") is not None:
            out.append(
                f"{run.path}: {_evaluated_in(run)} agreed with fp32 on "
                f"{100 * probe['agreement']:.2f}% of {probe.get('n')} sampled examples "
                f"(max |Δp| {probe.get('max_abs_dp', float('nan')):.4f})"
            )
    return out


def _evaluated_in(run: RunData) -> str:
    precision = run.record.model.precision or {}
    return str(precision.get("precision") or "fp32")


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
    """Everything but the evidence: bounds are decided here, comparative rules get their values."""
    mc, problem = _lookup(cand, rule, "candidate")
    if mc is None or mc.value is None:
        return RuleVerdict(rule, "error", problem or "")
    if isinstance(rule.check, BoundCheck):
        return _bound(rule, rule.check, mc)
    mb, problem = _lookup(base, rule, "baseline")
    if mb is None or mb.value is None:
        return RuleVerdict(rule, "error", problem or "")
    hib = mc.higher_is_better
    if hib is None and not rule.is_equivalence:
        return RuleVerdict(
            rule, "error", f"{rule.metric} has no direction (higher_is_better is null); use a bound"
        )
    sign = getattr(rule.check, "sign", None)
    if sign is not None and (sign == "-") != hib:
        word = "decrease" if sign == "-" else "increase"
        better = "higher" if hib else "lower"
        return RuleVerdict(
            rule,
            "error",
            f"the sign says a regression is a {word}, but {better} is better for {rule.metric}; "
            f"write {'-' if hib else '+'}{rule.check.tolerance:g}{UNIT_SUFFIX[rule.check.unit]}",  # type: ignore[union-attr]
        )
    return RuleVerdict(
        rule,
        "pass",
        "",
        baseline=mb.value,
        candidate=mc.value,
        change=mc.value - mb.value,
        allowed=rule.check.allowed(mb.value),
        higher_is_better=hib,
    )


def _bound(rule: Rule, check: BoundCheck, mc: Metric) -> RuleVerdict:
    ok = check.holds(mc.value or 0.0)
    message = f"{mc.value:.6g} {'meets' if ok else 'breaks'} the bound {check.describe()}"
    if mc.ci_low is not None and mc.ci_high is not None:
        inside = check.holds(mc.ci_low) and check.holds(mc.ci_high)
        outside = not check.holds(mc.ci_low) and not check.holds(mc.ci_high)
        if not (inside or outside):
            message += (
                f" (its 95% interval [{mc.ci_low:.4g}, {mc.ci_high:.4g}] straddles the bound: "
                "another sample of examples could decide otherwise)"
            )
    return RuleVerdict(
        rule, "pass" if ok else "fail", message, candidate=mc.value,
        higher_is_better=mc.higher_is_better,
    )


def _replicate_pass(
    bases: list[RunData], cands: list[RunData], rule: Rule, verdict: RuleVerdict
) -> RuleVerdict:
    """The first pass over replicate sets: each side's mean over its runs."""
    a, b = side_values(bases, rule), side_values(cands, rule)
    for side in (a, b):
        if isinstance(side, str):
            return RuleVerdict(rule, "error", side)
    assert isinstance(a, SideSummary) and isinstance(b, SideSummary)  # narrowed above
    if isinstance(rule.check, BoundCheck):
        ok = rule.check.holds(b.mean)
        sd = "" if b.seed_sd is None else f" ± {b.seed_sd:.3g} seed sd"
        return replace(
            verdict,
            status="pass" if ok else "fail",
            candidate=b.mean,
            message=f"mean {b.mean:.6g}{sd} over {len(b.values)} runs "
            f"{'meets' if ok else 'breaks'} the bound {rule.check.describe()}",
        )
    return replace(
        verdict,
        baseline=a.mean,
        candidate=b.mean,
        change=b.mean - a.mean,
        allowed=rule.check.allowed(a.mean),
    )


def evaluate(
    base: RunData, cand: RunData, policy: Policy, *, allow_mismatch: bool = False
) -> GateVerdict:
    return evaluate_sets([base], [cand], policy, allow_mismatch=allow_mismatch)


def evaluate_sets(
    bases: list[RunData],
    cands: list[RunData],
    policy: Policy,
    *,
    allow_mismatch: bool = False,
) -> GateVerdict:
    """Gate one candidate run (or a set of replicate runs) against a baseline run (or set)."""
    suites = {r.metric.suite for r in policy.rules}
    mismatches = sorted(
        {m for other in [*bases[1:], *cands] for m in find_mismatches(bases[0], other, suites)}
    )
    if mismatches and not allow_mismatch:
        listing = "\n".join(f"  - {m}" for m in mismatches)
        raise GateError(
            MSG_MISMATCH.format(
                baseline=_names(bases), candidate=_names(cands), listing=listing
            )
        )
    replicates = len(bases) > 1 or len(cands) > 1
    first = [_first_pass(bases[0], cands[0], rule) for rule in policy.rules]
    if replicates:
        first = [
            v if v.status == "error" else _replicate_pass(bases, cands, r, v)
            for r, v in zip(policy.rules, first, strict=True)
        ]

    def tester(rule: Rule, verdict: RuleVerdict, settings: EvidenceSettings) -> TestResult:
        if not replicates:
            return significance_test(bases[0], cands[0], rule, settings)
        a, b = side_values(bases, rule), side_values(cands, rule)
        assert isinstance(a, SideSummary) and isinstance(b, SideSummary)  # errors filtered
        return replicate_result(bases, cands, rule, a, b, settings)

    verdicts = _judge(policy, first, tester)
    notes = [f"compared despite mismatches (--allow-mismatch): {m}" for m in mismatches]
    for other in [*bases[1:], *cands]:
        notes.extend(n for n in precision_notes(bases[0], other) if n not in notes)
    for v in verdicts:
        if v.test is not None and v.test.p_value is None and v.test.note:
            notes.append(f"{v.rule.name}: {v.test.note}")
    return GateVerdict(
        baseline=_names(bases),
        candidate=_names(cands),
        policy=policy.source,
        rules=tuple(verdicts),
        correction=policy.correction,
        mismatches=tuple(mismatches),
        notes=tuple(notes),
        on_inconclusive=policy.on_inconclusive,
    )


def _names(runs: list[RunData]) -> str:
    return ", ".join(str(r.path) for r in runs)


Tester = Callable[[Rule, RuleVerdict, EvidenceSettings], TestResult]


def _judge(policy: Policy, first: list[RuleVerdict], tester: Tester) -> list[RuleVerdict]:
    """Evidence for every comparative rule (each states its power), Holm across the rules that
    ask for significance (whether or not their point estimate breaks the tolerance)."""
    family_size = max(
        1,
        sum(1 for r, v in zip(policy.rules, first, strict=True) if r.significant and v.status != "error"),
    )
    tests: dict[int, TestResult] = {}
    for i, (rule, verdict) in enumerate(zip(policy.rules, first, strict=True)):
        if rule.comparative and verdict.status != "error":
            tests[i] = tester(rule, verdict, settings_for(policy, rule, family_size))
    family = [i for i, t in tests.items() if policy.rules[i].significant and t.p_value is not None]
    raw = [tests[i].p_value or 0.0 for i in family]
    adjusted = stats.holm(raw) if policy.correction == "holm" else raw
    p_adj = dict(zip(family, adjusted, strict=True))
    return [
        decide(
            verdict, tests[i], p_adj.get(i), settings_for(policy, rule, family_size),
            policy.correction,
        )
        if i in tests
        else verdict
        for i, (rule, verdict) in enumerate(zip(policy.rules, first, strict=True))
    ]


def run_gate(
    baseline: Path | list[Path],
    candidate: Path | list[Path],
    policy: Policy,
    *,
    allow_mismatch: bool = False,
) -> GateVerdict:
    bases = [baseline] if isinstance(baseline, Path) else list(baseline)
    cands = [candidate] if isinstance(candidate, Path) else list(candidate)
    return evaluate_sets(
        [load_run(p) for p in bases],
        [load_run(p) for p in cands],
        policy,
        allow_mismatch=allow_mismatch,
    )
