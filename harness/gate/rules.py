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

A policy file is YAML::

    alpha: 0.05            # default significance level
    correction: holm       # holm (default) or none, across the rules that test significance
    power: 0.8             # power at which each comparative rule's detectable effect is stated
    on_inconclusive: warn  # warn (exit 0, said), fail (exit 1) or pass (exit 0, listed)
    n_perm: 2000           # randomization draws for permutation tests
    n_boot: 2000           # bootstrap resamples for intervals
    seed: 0
    rules:                 # a list of rule strings, or a mapping METRIC -> body or [bodies]
      - accuracy.accuracy >= 0.80
      - "accuracy.accuracy: -1pt significant"

Every error names the rule, its place in the file and the column of the offending token.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.errors import ConfigError

Op = Literal[">=", "<=", ">", "<"]
Unit = Literal["abs", "pt", "pct"]
Sign = Literal["+", "-"]

MSG_RULE_ERROR = "{source}: {where} {text!r}: column {column}: {problem}"
DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.8
POLICY_KEYS = ("alpha", "correction", "power", "on_inconclusive", "n_perm", "n_boot", "seed", "rules")
OnInconclusive = Literal["warn", "fail", "pass"]


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


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    alpha: float = DEFAULT_ALPHA
    correction: Literal["holm", "none"] = "holm"
    n_boot: int = 2000
    seed: int = 0
    source: str = "<policy>"
    power: float = DEFAULT_POWER
    on_inconclusive: OnInconclusive = "warn"
    n_perm: int = 2000

    def alpha_for(self, rule: Rule) -> float:
        return self.alpha if rule.alpha is None else rule.alpha


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
        metric_tok = self.peek()
        if metric_tok is None:
            raise RuleSyntaxError(
                "empty rule; expected 'suite.metric >= VALUE' or 'suite.metric: -1pt'", column=1
            )
        if metric_tok.kind != "metric":
            raise RuleSyntaxError(
                "expected a metric reference 'suite.metric' (e.g. accuracy.accuracy), "
                f"got {metric_tok.text!r}",
                column=metric_tok.column,
            )
        self.i += 1
        suite, _, name = metric_tok.text.partition(".")
        ref = MetricRef(suite, name)
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
        check: Check
        if tok is not None and tok.kind == "within":
            self.i += 1
            value, num_tok = self.number("a margin after 'within', such as 1pt or 0.02")
            if num_tok.text[0] in "+-":
                raise RuleSyntaxError(
                    "a 'within' margin has no sign: it applies both ways", column=num_tok.column
                )
            check = EquivalenceCheck(value, self.unit())
        elif tok is not None and tok.kind == "op":
            self.i += 1
            op: Op = tok.text  # type: ignore[assignment]
            value, _ = self.number(f"a number after {tok.text!r}")
            unit = self.unit()
            check = BoundCheck(op, value / 100.0 if unit != "abs" else value)
        else:
            value, num_tok = self.number("a change such as -1pt, +10% or 0.02")
            sign: Sign | None = num_tok.text[0] if num_tok.text[0] in "+-" else None  # type: ignore[assignment]
            check = RegressionCheck(abs(value), self.unit(), sign)
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
        if (significant or alpha is not None) and isinstance(check, BoundCheck):
            raise RuleSyntaxError(
                "'significant' and 'alpha=' apply to regression rules (suite.metric: -1pt), "
                "not to bounds",
                column=metric_tok.column,
            )
        if significant and isinstance(check, EquivalenceCheck):
            raise RuleSyntaxError(
                "'significant' does not apply to 'within' rules: equivalence is always tested "
                "(use alpha= to set its level)",
                column=metric_tok.column,
            )
        if alpha is not None and not isinstance(check, EquivalenceCheck):
            significant = True
        return Rule(
            text=self.text,
            where=where,
            metric=ref,
            check=check,
            significant=significant,
            alpha=alpha,
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


# ------------------------------------------------------------------ policy files


def _rule_texts(raw: Any, source: str) -> list[tuple[str, str]]:
    """Flatten the accepted YAML shapes into (where, rule text) pairs."""
    out: list[tuple[str, str]] = []
    if isinstance(raw, dict):
        for metric, body in raw.items():
            bodies = body if isinstance(body, list) else [body]
            for j, item in enumerate(bodies):
                where = f"rules.{metric}" + (f"[{j}]" if isinstance(body, list) else "")
                if not isinstance(item, (str, int, float)) or isinstance(item, bool):
                    raise ConfigError(
                        f"{source}: {where}: expected a rule body such as '-1pt' or '>= 0.8'"
                    )
                text = str(item).strip()
                joiner = " " if text[:1] in "<>" else ": "
                out.append((where, f"{metric}{joiner}{text}"))
        return out
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: rules: expected a list of rules or a mapping metric -> rule")
    for i, item in enumerate(raw):
        where = f"rules[{i}]"
        # YAML reads "- accuracy.accuracy: -1pt" as a one-key mapping; put it back together.
        if isinstance(item, dict) and len(item) == 1:
            ((metric, body),) = item.items()
            out.append((where, f"{metric}: {body}"))
        elif isinstance(item, str):
            out.append((where, item))
        else:
            raise ConfigError(
                f"{source}: {where}: expected a rule string such as 'accuracy.accuracy >= 0.8'"
            )
    return out


def parse_policy(raw: Any, *, source: str = "<policy>") -> Policy:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a policy must be a mapping with a 'rules' key")
    unknown = sorted(set(raw) - set(POLICY_KEYS))
    if unknown:
        from harness.registry import did_you_mean

        hint = did_you_mean(str(unknown[0]), list(POLICY_KEYS))
        raise ConfigError(
            f"{source}: unknown key {unknown[0]!r}{hint}; allowed: {', '.join(POLICY_KEYS)}"
        )
    if "rules" not in raw or not raw["rules"]:
        raise ConfigError(f"{source}: rules: the policy has no rules")
    alpha = raw.get("alpha", DEFAULT_ALPHA)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ConfigError(f"{source}: alpha: must be a number between 0 and 1 (got {alpha!r})")
    correction = raw.get("correction", "holm")
    if correction not in ("holm", "none"):
        raise ConfigError(f"{source}: correction: must be 'holm' or 'none' (got {correction!r})")
    n_boot = _int_key(raw, "n_boot", 2000, 100, source)
    n_perm = _int_key(raw, "n_perm", 2000, 100, source)
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"{source}: seed: must be an integer (got {seed!r})")
    power = raw.get("power", DEFAULT_POWER)
    if isinstance(power, bool) or not isinstance(power, (int, float)) or not 0 < power < 1:
        raise ConfigError(f"{source}: power: must be a number between 0 and 1 (got {power!r})")
    on_inconclusive = raw.get("on_inconclusive", "warn")
    if on_inconclusive not in ("warn", "fail", "pass"):
        raise ConfigError(
            f"{source}: on_inconclusive: must be 'warn', 'fail' or 'pass' (got {on_inconclusive!r})"
        )
    rules = tuple(
        parse_rule(text, where=where, source=source)
        for where, text in _rule_texts(raw["rules"], source)
    )
    return Policy(
        rules=rules,
        alpha=float(alpha),
        correction=correction,
        n_boot=n_boot,
        seed=seed,
        source=source,
        power=float(power),
        on_inconclusive=on_inconclusive,
        n_perm=n_perm,
    )


def _int_key(raw: dict[str, Any], key: str, default: int, minimum: int, source: str) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{source}: {key}: must be an integer >= {minimum} (got {value!r})")
    return value


def load_policy(path: Path) -> Policy:
    from harness.config import load_yaml

    raw = load_yaml(path, what="policy file")
    return parse_policy(raw, source=str(path))
