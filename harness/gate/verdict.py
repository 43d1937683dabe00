"""A gate verdict: one ``RuleVerdict`` per rule and the ``GateVerdict`` over them.

Statuses: ``pass``, ``fail`` (a regression), ``inconclusive`` (the data cannot tell: too few
examples, or a test too weak to see a regression of the tolerated size) and ``error`` (the rule
could not be evaluated). The policy's ``on_inconclusive`` decides what an inconclusive verdict
does to the exit code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from harness.errors import ExitCode
from harness.gate.policy import OnInconclusive
from harness.gate.result import TestResult
from harness.gate.rules import BoundCheck, Rule

Status = Literal["pass", "fail", "inconclusive", "error"]


@dataclass(frozen=True)
class RuleVerdict:
    rule: Rule
    status: Status
    message: str
    baseline: float | None = None
    candidate: float | None = None
    change: float | None = None  # candidate − baseline (on the compared examples when paired)
    allowed: float | None = None  # tolerated worsening (or equivalence margin), metric's unit
    higher_is_better: bool | None = None
    test: TestResult | None = None
    p_adjusted: float | None = None
    alpha: float | None = None
    power: float | None = None
    alpha_power: float | None = None  # the level power and the minimum n were judged at

    def to_json(self) -> dict[str, Any]:
        kind = "bound" if isinstance(self.rule.check, BoundCheck) else (
            "equivalence" if self.rule.is_equivalence else "regression"
        )
        return {
            "rule": self.rule.name,
            "where": self.rule.where,
            "metric": str(self.rule.metric),
            "kind": kind,
            "significant_required": self.rule.significant,
            "status": self.status,
            "message": self.message,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "change": self.change,
            "allowed_worsening": self.allowed,
            "higher_is_better": self.higher_is_better,
            "test": None if self.test is None else self._test_json(self.test),
        }

    def _test_json(self, t: TestResult) -> dict[str, Any]:
        return {
            "method": t.method,
            "kind": t.kind,
            "p_value": t.p_value,
            "p_adjusted": self.p_adjusted,
            "alpha": self.alpha,
            "n": t.n,
            "informative": t.informative,
            "min_informative": t.min_informative,
            "estimate": t.estimate,
            "baseline_value": t.baseline_value,
            "candidate_value": t.candidate_value,
            "diff_ci": [t.diff_low, t.diff_high],
            "equivalence_ci": [t.equivalence_low, t.equivalence_high],
            "interval_method": t.interval_method,
            "mde": t.mde,
            "mde_basis": t.mde_basis,
            "power": self.power,
            "alpha_power": self.alpha_power,
            "note": t.note,
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
    on_inconclusive: OnInconclusive = "warn"

    @property
    def status(self) -> Status:
        found = {r.status for r in self.rules}
        for status in ("error", "fail", "inconclusive"):
            if status in found:
                return status  # type: ignore[return-value]
        return "pass"

    @property
    def exit_code(self) -> int:
        status = self.status
        if status == "inconclusive":
            return ExitCode.REGRESSION if self.on_inconclusive == "fail" else ExitCode.OK
        return {"pass": ExitCode.OK, "fail": ExitCode.REGRESSION, "error": ExitCode.USAGE}[status]

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "exit_code": int(self.exit_code),
            "on_inconclusive": self.on_inconclusive,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "policy": self.policy,
            "correction": self.correction,
            "allowed_mismatches": list(self.mismatches),
            "notes": list(self.notes),
            "rules": [r.to_json() for r in self.rules],
        }
