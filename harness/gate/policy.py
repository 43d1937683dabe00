"""Gate policy files: YAML with a level, a correction, power, and a list of rules.

A policy file::

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

Each rule is parsed by ``harness.gate.rules``; every error names the rule, its place in the
file and the column of the offending token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.errors import ConfigError
from harness.gate.rules import Rule, parse_rule

DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.8
POLICY_KEYS = ("alpha", "correction", "power", "on_inconclusive", "n_perm", "n_boot", "seed", "rules")
OnInconclusive = Literal["warn", "fail", "pass"]


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
