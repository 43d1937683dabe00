"""The gate's rule language: a compact syntax parsed into typed, frozen checks.

In the spirit of pytest-benchmark's ``--benchmark-compare-fail=mean:5%``, one rule is one line::

    accuracy.accuracy >= 0.80                   absolute bound on the candidate
    accuracy.accuracy: -1pt significant         worse than the baseline by at most 1 percentage
                                                point, failing only on a significant change
    latency.single_stream.p99_ms: +10%          regression of at most 10% of the baseline value
    robustness.pwws.attack_success_rate: +0.02 significant alpha=0.01
    accuracy.accuracy: within 1pt               equivalence (TOST): the 90% interval of the
                                                paired difference lies inside ±1pt

Grammar (whitespace between tokens is free)::

    rule      := METRIC (bound | ':' (bound | change | within)) flag*
    bound     := ('>=' | '<=' | '>' | '<') NUMBER ('%' | 'pt')?
    change    := ('+' | '-')? NUMBER ('%' | 'pt')?
    within    := 'within' NUMBER ('%' | 'pt')?
    flag      := 'significant' | 'alpha=' NUMBER
    METRIC    := SUITE '.' NAME        (NAME may contain dots: 'pwws.attack_success_rate')

Units: ``pt`` is a percentage point (0.01 on a 0..1 scale); ``%`` in a change is relative to the
baseline value, in a bound it is a percentage of 1 (``>= 80%`` is ``>= 0.80``); no unit is the
metric's own unit. The sign of a change is optional: the metric's ``higher_is_better`` decides
which direction is a regression, and a sign that contradicts it is refused when the gate runs.

Policy files (a level, a correction, power and a list of rules) are ``harness.gate.policy``.
Every error names the rule, its place in the file and the column of the offending token.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from harness.errors import ConfigError

Op = Literal[">=", "<=", ">", "<"]
Unit = Literal["abs", "pt", "pct"]
Sign = Literal["+", "-"]

MSG_RULE_ERROR = "{source}: {where} {text!r}: column {column}: {problem}"


class RuleSyntaxError(ConfigError):
    """A rule that cannot be parsed; ``column`` is 1-based within the rule text."""

    def __init__(self, message: str, *, column: int) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class MetricRef:
    """``suite.metric``: the first dotted part names the suite, the rest the metric."""

    suite: str
    metric: str

    def __str__(self) -> str:
        return f"{self.suite}.{self.metric}"


@dataclass(frozen=True)
class BoundCheck:
    """The candidate's value must satisfy ``value OP limit``."""

    op: Op
    limit: float

    def holds(self, value: float) -> bool:
        return {
            ">=": value >= self.limit,
            "<=": value <= self.limit,
            ">": value > self.limit,
            "<": value < self.limit,
        }[self.op]

    def describe(self) -> str:
        return f"{self.op} {self.limit:g}"


@dataclass(frozen=True)
class RegressionCheck:
    """The candidate may be worse than the baseline by at most ``tolerance`` (in ``unit``)."""

    tolerance: float  # non-negative
    unit: Unit
    sign: Sign | None  # as written; None when the direction is left to the record

    def allowed(self, baseline: float) -> float:
        """The tolerated worsening in the metric's own unit."""
        if self.unit == "pt":
            return self.tolerance / 100.0
        if self.unit == "pct":
            return abs(baseline) * self.tolerance / 100.0
        return self.tolerance

    def describe(self) -> str:
        suffix = {"abs": "", "pt": "pt", "pct": "%"}[self.unit]
        return f"worsen by at most {self.tolerance:g}{suffix}"


@dataclass(frozen=True)
class EquivalenceCheck:
    """The paired difference must be shown to lie within ±``margin`` (two one-sided tests)."""

    margin: float  # non-negative
    unit: Unit

    def allowed(self, baseline: float) -> float:
        """The margin in the metric's own unit."""
        return RegressionCheck(self.margin, self.unit, None).allowed(baseline)

    def describe(self) -> str:
        suffix = {"abs": "", "pt": "pt", "pct": "%"}[self.unit]
        return f"within ±{self.margin:g}{suffix}"


Check = BoundCheck | RegressionCheck | EquivalenceCheck


@dataclass(frozen=True)
class Rule:
    """One parsed rule, with where it came from (for messages and JUnit names)."""

    text: str
    where: str  # e.g. "rules[2]"
    metric: MetricRef
    check: Check
    significant: bool = False
    alpha: float | None = None  # None: the policy's alpha

    @property
    def name(self) -> str:
        return " ".join(self.text.split())

    @property
    def is_equivalence(self) -> bool:
        return isinstance(self.check, EquivalenceCheck)

    @property
    def comparative(self) -> bool:
        """Compares the candidate with the baseline (every rule but a bound)."""
        return not isinstance(self.check, BoundCheck)


# ------------------------------------------------------------------ tokenizer

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<op>>=|<=|>|<)
  | (?P<colon>:)
  | (?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<unit>%|pt\b)
  | (?P<flag>alpha\s*=|significant(?=\s|$))
  | (?P<within>within(?=\s|$))
  | (?P<metric>[A-Za-z_][\w-]*(?:\.[\w-]+)+)
  | (?P<word>\S+?)(?=\s|$|:|>|<)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    column: int  # 1-based


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise RuleSyntaxError(f"unexpected character {text[pos]!r}", column=pos + 1)
        kind = match.lastgroup or "word"
        if kind != "ws":
            out.append(_Token(kind, match.group(), pos + 1))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> _Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, kind: str, expected: str) -> _Token:
        tok = self.peek()
        if tok is None:
            raise RuleSyntaxError(
                f"expected {expected} at the end of the rule", column=len(self.text) + 1
            )
        if tok.kind != kind:
            raise RuleSyntaxError(f"expected {expected}, got {tok.text!r}", column=tok.column)
        self.i += 1
        return tok

    def number(self, expected: str) -> tuple[float, _Token]:
        tok = self.take("number", expected)
        value = float(tok.text)
        if not math.isfinite(value):
            raise RuleSyntaxError(f"{tok.text!r} is not a finite number", column=tok.column)
        return value, tok

    def unit(self) -> Unit:
        tok = self.peek()
        if tok is not None and tok.kind == "unit":
            self.i += 1
            return "pct" if tok.text == "%" else "pt"
        return "abs"

    def parse(self, where: str) -> Rule:
        metric_tok = self.metric()
        check = self.check()
        significant, alpha = self.flags()
        _check_flags(check, significant, alpha, metric_tok.column)
        if alpha is not None and not isinstance(check, EquivalenceCheck):
            significant = True
        suite, _, name = metric_tok.text.partition(".")
        return Rule(
            text=self.text,
            where=where,
            metric=MetricRef(suite, name),
            check=check,
            significant=significant,
            alpha=alpha,
        )

    def metric(self) -> _Token:
        tok = self.peek()
        if tok is None:
            raise RuleSyntaxError(
                "empty rule; expected 'suite.metric >= VALUE' or 'suite.metric: -1pt'", column=1
            )
        if tok.kind != "metric":
            raise RuleSyntaxError(
                "expected a metric reference 'suite.metric' (e.g. accuracy.accuracy), "
                f"got {tok.text!r}",
                column=tok.column,
            )
        self.i += 1
        return tok

    def check(self) -> Check:
        """What follows the metric: ``: change``, ``: within M`` or a bound (``:`` optional)."""
        tok = self.peek()
        if tok is not None and tok.kind == "colon":
            self.i += 1
            tok = self.peek()
        elif tok is None or tok.kind != "op":
            shown = "the end of the rule" if tok is None else repr(tok.text)
            col = len(self.text) + 1 if tok is None else tok.column
            raise RuleSyntaxError(
                f"expected ':' or a comparison (>=, <=, >, <) after the metric, got {shown}",
                column=col,
            )
        if tok is not None and tok.kind == "within":
            self.i += 1
            value, num_tok = self.number("a margin after 'within', such as 1pt or 0.02")
            if num_tok.text[0] in "+-":
                raise RuleSyntaxError(
                    "a 'within' margin has no sign: it applies both ways", column=num_tok.column
                )
            return EquivalenceCheck(value, self.unit())
        if tok is not None and tok.kind == "op":
            self.i += 1
            op: Op = tok.text  # type: ignore[assignment]
            value, _ = self.number(f"a number after {tok.text!r}")
            unit = self.unit()
            return BoundCheck(op, value / 100.0 if unit != "abs" else value)
        value, num_tok = self.number("a change such as -1pt, +10% or 0.02")
        sign: Sign | None = num_tok.text[0] if num_tok.text[0] in "+-" else None  # type: ignore[assignment]
        return RegressionCheck(abs(value), self.unit(), sign)

    def flags(self) -> tuple[bool, float | None]:
        significant, alpha = False, None
        while (tok := self.peek()) is not None:
            if tok.kind != "flag":
                raise RuleSyntaxError(
                    f"unexpected {tok.text!r}; expected a flag ('significant' or 'alpha=0.05')",
                    column=tok.column,
                )
            self.i += 1
            if tok.text == "significant":
                significant = True
            else:
                alpha, a_tok = self.number("a number after 'alpha='")
                if not 0 < alpha < 1:
                    raise RuleSyntaxError(
                        f"alpha must be between 0 and 1 (got {a_tok.text})", column=a_tok.column
                    )
        return significant, alpha


def _check_flags(check: Check, significant: bool, alpha: float | None, column: int) -> None:
    if (significant or alpha is not None) and isinstance(check, BoundCheck):
        raise RuleSyntaxError(
            "'significant' and 'alpha=' apply to regression rules (suite.metric: -1pt), "
            "not to bounds",
            column=column,
        )
    if significant and isinstance(check, EquivalenceCheck):
        raise RuleSyntaxError(
            "'significant' does not apply to 'within' rules: equivalence is always tested "
            "(use alpha= to set its level)",
            column=column,
        )


def parse_rule(text: str, *, where: str = "rule", source: str = "<rule>") -> Rule:
    """Parse one rule; a ``ConfigError`` names the rule, its place and the column on bad input."""
    if not isinstance(text, str):
        raise ConfigError(f"{source}: {where}: a rule must be a string (got {type(text).__name__})")
    try:
        return _Parser(text).parse(where)
    except RuleSyntaxError as exc:
        raise ConfigError(
            MSG_RULE_ERROR.format(
                source=source, where=where, text=text, column=exc.column, problem=exc.message
            )
        ) from None
