"""The gate's rule language: typed parse results, round trips, errors that point at the column."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import ConfigError
from harness.gate.policy import load_policy, parse_policy
from harness.gate.rules import BoundCheck, MetricRef, RegressionCheck, parse_rule


def test_examples_parse_into_typed_checks() -> None:
    bound = parse_rule("accuracy.accuracy >= 0.80")
    assert bound.metric == MetricRef("accuracy", "accuracy")
    assert bound.check == BoundCheck(">=", 0.80) and not bound.significant
    reg = parse_rule("accuracy.accuracy: -1pt significant")
    assert reg.check == RegressionCheck(1.0, "pt", "-") and reg.significant and reg.alpha is None
    assert reg.check.allowed(0.9) == pytest.approx(0.01)
    lat = parse_rule("latency.single_stream.p99_ms: +10%")
    assert lat.metric == MetricRef("latency", "single_stream.p99_ms")
    assert lat.check == RegressionCheck(10.0, "pct", "+")
    assert lat.check.allowed(20.0) == pytest.approx(2.0)
    asr = parse_rule("robustness.pwws.attack_success_rate: 0.02 alpha=0.01")
    assert asr.check == RegressionCheck(0.02, "abs", None) and asr.significant and asr.alpha == 0.01
    assert parse_rule("accuracy.accuracy >= 80%").check == BoundCheck(">=", 0.8)
    assert parse_rule("accuracy.accuracy:<0.5").check == BoundCheck("<", 0.5)


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("accuracy.accuracy >= eighty", 22, "expected a number after '>='"),
        ("accuracy >= 0.8", 1, "expected a metric reference"),
        ("accuracy.accuracy 0.8", 19, "expected ':' or a comparison"),
        ("accuracy.accuracy: -1pt sometimes", 25, "expected a flag"),
        ("accuracy.accuracy >= 0.8 significant", 1, "apply to regression rules"),
        ("accuracy.accuracy: -1pt alpha=2", 31, "alpha must be between 0 and 1"),
        ("accuracy.accuracy:", 19, "at the end of the rule"),
        ("", 1, "empty rule"),
    ],
)
def test_errors_name_rule_and_column(text: str, column: int, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_rule(text, where="rules[3]", source="gate.yaml")
    message = info.value.message
    assert message.startswith(f"gate.yaml: rules[3] {text!r}: column {column}: ")
    assert fragment in message


def test_policy_shapes(tmp_path: Path) -> None:
    listed = parse_policy(
        {"rules": ["accuracy.accuracy >= 0.8", {"accuracy.accuracy": "-1pt significant"}]}
    )
    mapped = parse_policy(
        {
            "alpha": 0.01,
            "correction": "none",
            "rules": {"accuracy.accuracy": [">= 0.8", "-1pt significant"]},
        }
    )
    assert [r.check for r in listed.rules] == [r.check for r in mapped.rules]
    assert mapped.alpha == 0.01 and mapped.correction == "none"
    assert [r.where for r in mapped.rules] == [
        "rules.accuracy.accuracy[0]",
        "rules.accuracy.accuracy[1]",
    ]
    file = tmp_path / "gate.yaml"
    file.write_text("rules:\n  - accuracy.accuracy: -1pt\n  - latency.p99_ms: +10%\n")
    policy = load_policy(file)
    assert policy.source == str(file) and len(policy.rules) == 2


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"rules": []}, "the policy has no rules"),
        ({"rule": ["a.b >= 1"]}, "unknown key 'rule' (did you mean 'rules'?)"),
        ({"alpha": 3, "rules": ["a.b >= 1"]}, "alpha: must be a number between 0 and 1"),
        (
            {"correction": "bonferroni", "rules": ["a.b >= 1"]},
            "correction: must be 'holm' or 'none'",
        ),
        ({"rules": [42]}, "rules[0]: expected a rule string"),
        ([1, 2], "a policy must be a mapping"),
    ],
)
def test_bad_policies(raw: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_policy(raw, source="gate.yaml")
    assert fragment in info.value.message and info.value.message.startswith("gate.yaml: ")


def test_bad_policy_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="policy file not found"):
        load_policy(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML at line"):
        load_policy(broken)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"rules:\n  - \xff\xfe\n")
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_policy(binary)


# ------------------------------------------------------------------ properties

names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda s: s not in ("significant", "pt", "alpha")
)
metric_refs = st.builds(MetricRef, names, st.lists(names, min_size=1, max_size=3).map(".".join))
numbers = st.decimals(min_value=0, max_value=10_000, places=3, allow_nan=False).map(
    lambda d: float(d)
)


@given(
    metric_refs,
    st.sampled_from([">=", "<=", ">", "<"]),
    numbers,
    st.sampled_from(["", ":", ": "]),
    st.sampled_from(["", "%", "pt"]),
)
def test_bound_round_trip(ref: MetricRef, op: str, value: float, colon: str, unit: str) -> None:
    rule = parse_rule(f"{ref}{colon} {op} {value!r}{unit}")
    assert rule.metric == ref
    expected = value / 100 if unit else value
    assert isinstance(rule.check, BoundCheck)
    assert rule.check.op == op and rule.check.limit == pytest.approx(expected)


@given(
    metric_refs,
    st.sampled_from(["", "+", "-"]),
    numbers,
    st.sampled_from(["", "%", "pt"]),
    st.booleans(),
    st.one_of(st.none(), st.sampled_from([0.001, 0.01, 0.05, 0.1])),
)
def test_regression_round_trip(
    ref: MetricRef, sign: str, value: float, unit: str, sig: bool, alpha: float | None
) -> None:
    flags = (" significant" if sig else "") + (f" alpha={alpha}" if alpha is not None else "")
    rule = parse_rule(f"{ref}: {sign}{value!r}{unit}{flags}")
    assert rule.metric == ref
    assert isinstance(rule.check, RegressionCheck)
    assert rule.check.tolerance == value and rule.check.sign == (sign or None)
    assert rule.check.unit == {"": "abs", "%": "pct", "pt": "pt"}[unit]
    assert rule.significant == (sig or alpha is not None) and rule.alpha == alpha


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_arbitrary_text_parses_or_fails_cleanly(text: str) -> None:
    """Any string either parses or raises ConfigError naming the rule and a column inside it."""
    try:
        parse_rule(text, where="rules[0]", source="p.yaml")
    except ConfigError as exc:
        assert exc.message.startswith(f"p.yaml: rules[0] {text!r}: column ")
        column = int(exc.message.split("column ", 1)[1].split(":", 1)[0])
        assert 1 <= column <= len(text) + 1


@settings(max_examples=200)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=8,
    )
)
def test_arbitrary_policy_data_fails_cleanly(raw: object) -> None:
    try:
        parse_policy(raw, source="p.yaml")
    except ConfigError as exc:
        assert exc.message.startswith("p.yaml: ")


@given(metric_refs, st.text(alphabet="!@#$^&*()[]{}~`?", min_size=1, max_size=5))
def test_garbage_after_number_points_at_it(ref: MetricRef, junk: str) -> None:
    text = f"{ref} >= 1 {junk}"
    with pytest.raises(ConfigError) as info:
        parse_rule(text)
    assert f"column {len(str(ref)) + 7}:" in info.value.message


def test_within_rules_parse_and_refuse_sign_and_significant() -> None:
    from harness.gate.rules import EquivalenceCheck

    rule = parse_rule("accuracy.accuracy: within 1pt alpha=0.1")
    assert rule.check == EquivalenceCheck(1.0, "pt") and rule.alpha == 0.1
    assert rule.is_equivalence and not rule.significant and rule.check.allowed(0.8) == pytest.approx(0.01)
    with pytest.raises(ConfigError, match="column 27: a 'within' margin has no sign"):
        parse_rule("accuracy.accuracy: within -1pt")
    with pytest.raises(ConfigError, match="'significant' does not apply to 'within' rules"):
        parse_rule("accuracy.accuracy: within 1pt significant")
    with pytest.raises(ConfigError, match="on_inconclusive: must be 'warn', 'fail' or 'pass'"):
        parse_policy({"rules": ["accuracy.accuracy >= 0.5"], "on_inconclusive": "maybe"})
    with pytest.raises(ConfigError, match="power: must be a number between 0 and 1"):
        parse_policy({"rules": ["accuracy.accuracy >= 0.5"], "power": 1.5})


def test_documented_example_policy_parses() -> None:
    path = Path(__file__).parent.parent / "docs" / "gate-policy.example.yaml"
    policy = load_policy(path)
    assert policy.correction == "holm" and len(policy.rules) == 6
    assert policy.rules[-1].alpha == 0.01 and policy.rules[-1].significant
    assert policy.rules[2].is_equivalence and policy.on_inconclusive == "warn"
