"""Run-file validation: every problem at once, with paths; did-you-mean; overrides."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.config import apply_override, load_run_config, parse_run_config
from harness.errors import ConfigError

BASE = {
    "dataset": {"name": "rotten-tomatoes"},
    "model": {"artifact": "minilm-l6"},
    "suites": [{"name": "accuracy"}],
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_minimal_config() -> None:
    config, params = parse_run_config(dict(BASE), source="x")
    assert config.seed == 0 and config.model.artifact == "minilm-l6"
    assert params[0].n_bootstrap == 1000


def test_all_errors_reported_at_once_with_paths() -> None:
    raw = {
        "sede": 3,
        "dataset": {"name": "rotten-tomatoes", "eval_splt": "test"},
        "model": {"artifact": "minilm-l6", "max_length": -3},
        "suites": [{"name": "accuracy", "params": {"n_bootstrp": 10}}, {"name": "acuracy"}],
    }
    with pytest.raises(ConfigError) as info:
        parse_run_config(raw, source="run.yaml")
    msg = info.value.message
    assert "5 problem(s)" in msg
    assert "sede: unknown key (did you mean 'seed'?)" in msg
    assert "dataset.eval_splt: unknown key (did you mean 'eval_split'?)" in msg
    assert "model.max_length: Input should be greater than 0 (got -3)" in msg
    assert "suites[0].params.n_bootstrp: unknown key (did you mean 'n_bootstrap'?)" in msg
    assert "suites[1].name: unknown suite 'acuracy' (did you mean 'accuracy'?)" in msg


def test_model_source_must_be_unique() -> None:
    raw = dict(BASE, model={"artifact": "minilm-l6", "path": "x"})
    with pytest.raises(ConfigError, match="exactly one of artifact, path or hub"):
        parse_run_config(raw, source="run.yaml")


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1\ndataset: [unclosed\n")
    with pytest.raises(ConfigError, match=r"run.yaml: invalid YAML at line \d+, column \d+"):
        load_run_config(path)


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the run file is empty"):
        load_run_config(write(tmp_path, ""))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_run_config(write(tmp_path, "- a\n- b\n"))


def test_overrides_apply_before_validation(tmp_path: Path) -> None:
    path = write(tmp_path, "dataset: {name: rotten-tomatoes}\nmodel: {artifact: minilm-l6}\nsuites: [{name: accuracy}]\n")
    config, params = load_run_config(path, ["seed=3", "suites[0].params.n_bootstrap=50", "model.max_length=64"])
    assert config.seed == 3 and config.model.max_length == 64 and params[0].n_bootstrap == 50
    with pytest.raises(ConfigError, match=r"suites\[4\] does not exist"):
        load_run_config(path, ["suites[4].name=x"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_run_config(path, ["seed"])


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(), lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=12))
def test_arbitrary_yaml_values_never_crash(value: object) -> None:
    """Any parsed YAML value either validates or raises ConfigError, never another exception."""
    raw = value if isinstance(value, dict) else {"dataset": value, "suites": value}
    with contextlib.suppress(ConfigError):
        parse_run_config(raw, source="fuzz.yaml")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_override_strings_never_crash(text: str) -> None:
    raw: dict[str, object] = {"suites": [{"name": "accuracy"}]}
    with contextlib.suppress(ConfigError):
        apply_override(raw, text)


@pytest.mark.parametrize("text", ["A=\t", "A=\x1f", "seed=[1, 2"])
def test_override_value_that_is_not_yaml_names_the_override(text: str) -> None:
    """Found by hypothesis: a tab or a control character after '=' made yaml raise through."""
    with pytest.raises(ConfigError, match="not valid YAML"):
        apply_override({}, text)
