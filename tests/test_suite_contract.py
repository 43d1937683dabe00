"""Conformance over the registry: every registered suite meets the same contract.

Runs each suite through the real runner on the tiny fixture BERT: the record validates and
round-trips, two runs give the same metrics and per-example bytes, a run whose per-example file
lost its tail (and whose last line is torn) resumes to the same result, and bad parameters are
refused with their config path. Its per-example declarations (``details.per_example``) name its
own metrics, parse, and reproduce the recorded values when the gate reads them; for the built-in
suites they are exactly what the gate assumed for records written before the suites declared
them (``legacy_per_example_declaration``). Its ``Params`` is the class its ``Suite[P]`` names.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest

from harness import registry
from harness.config import parse_run_config
from harness.errors import ConfigError
from harness.gate.extract import extract
from harness.gate.inputs import legacy_per_example_declaration, load_run, per_example_spec
from harness.gate.rules import parse_rule
from harness.records import RECORD_FILE, SuiteRecord, dump_record, load_record
from harness.run.pipeline import execute
from harness.suites.base import Suite

SUITES = registry.suites.names()


def write_run(tmp_path: Path, model: Path, data: Path, suite: str, params: dict[str, Any]) -> Path:
    run = tmp_path / f"{suite}.yaml"
    run.write_text(
        json.dumps(
            {
                "name": f"contract-{suite}",
                "seed": 1,
                "threads": 1,
                "dataset": {"path": str(data), "columns": {"id": "id", "groups": ["group"]}, "labels": ["neg", "pos"], "split_fractions": {"train": 0.5, "test": 0.5}, "max_examples": 16},
                "model": {"path": str(model), "max_length": 32, "batch_size": 8},
                "suites": [{"name": suite, "params": params}],
            }
        )
    )
    return run


def diff_paths(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two JSON values differ (a readable failure message instead of a 20 kB repr)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [p for k in sorted(set(a) | set(b)) for p in diff_paths(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [p for i, (x, y) in enumerate(zip(a, b, strict=True)) for p in diff_paths(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {str(a)[:80]} != {str(b)[:80]}"]


def comparable(record: Any, timing: bool) -> list[dict[str, Any]]:
    out = []
    for s in record.suites:
        d = s.model_dump(mode="json", exclude={"wall_time_s"})
        if timing:  # measurements of the machine: only their names and the structure must agree
            d["metrics"] = sorted(m["name"] for m in d["metrics"])
            d.pop("details")
            d.pop("warnings")
        out.append(d)
    return out


@pytest.mark.parametrize("name", SUITES)
def test_suite_contract(name: str, tmp_path: Path, tiny_model_dir: Path, tiny_csv: Path) -> None:
    cls = registry.suites.get(name)
    if cls.unavailable_reason():
        pytest.skip(f"{name}: {cls.unavailable_reason()}")
    run = write_run(tmp_path, tiny_model_dir, tiny_csv, name, cls.smoke_params)
    a = execute(run, out_dir=tmp_path / "a")
    assert a.record.status == "complete", a.record.suites[0].error
    suite = a.record.suites[0]
    assert suite.status == "ok" and suite.metrics and suite.version == cls.version
    assert (a.run_dir / RECORD_FILE).read_text() == dump_record(load_record(a.run_dir))
    for m in suite.metrics:
        assert m.value is None or isinstance(m.value, float)
        if m.ci_low is not None and m.ci_high is not None and m.value is not None:
            assert m.ci_low <= m.ci_high

    check_declarations(a.run_dir, suite)
    assert suite.capabilities == cls.capabilities  # the record carries the suite's tags
    if cls.capabilities.headline is not None:  # a declared headline names a real metric
        assert cls.capabilities.headline_metric([m.name for m in suite.metrics]) is not None

    b = execute(run, out_dir=tmp_path / "b")
    assert not diff_paths(comparable(a.record, cls.capabilities.timing_dependent), comparable(b.record, cls.capabilities.timing_dependent))
    if suite.examples_file and not cls.capabilities.timing_dependent:
        assert (a.run_dir / suite.examples_file).read_bytes() == (b.run_dir / suite.examples_file).read_bytes()

    if suite.examples_file:
        # Lose the tail: keep half the rows plus a torn line, mark the record incomplete, resume.
        path = b.run_dir / suite.examples_file
        lines = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(b"".join(lines[: len(lines) // 2]) + lines[-1][: max(1, len(lines[-1]) // 2)])
        record = json.loads((b.run_dir / RECORD_FILE).read_text())
        record["status"] = "incomplete"
        record["suites"] = []
        (b.run_dir / RECORD_FILE).write_text(json.dumps(record))
        c = execute(run, out_dir=b.run_dir)
        assert c.record.status == "complete"
        assert not diff_paths(comparable(a.record, cls.capabilities.timing_dependent), comparable(c.record, cls.capabilities.timing_dependent))
        if not cls.capabilities.timing_dependent:
            assert (a.run_dir / suite.examples_file).read_bytes() == path.read_bytes()


@pytest.mark.parametrize("name", SUITES)
def test_suite_refuses_unknown_params(name: str) -> None:
    raw = {"dataset": {"name": "rotten-tomatoes"}, "model": {"artifact": "minilm-l6"}, "suites": [{"name": name, "params": {"no_such_param": 1}}]}
    with pytest.raises(ConfigError, match=r"suites\[0\]\.params\.no_such_param: unknown key"):
        parse_run_config(raw, source="contract.yaml")


def check_declarations(run_dir: Path, suite: SuiteRecord) -> None:
    """The suite's details.per_example against its metrics, the legacy reader and the gate."""
    declared = suite.details.get("per_example", {})
    names = {m.name for m in suite.metrics}
    assert set(declared) <= names, f"declared for metrics the suite does not have: {set(declared) - names}"
    legacy = {
        m.name: spec
        for m in suite.metrics
        if (spec := legacy_per_example_declaration(suite.base_name, m.name)) is not None
    }
    assert {k: declared.get(k) for k in legacy} == legacy  # the same declarations as before
    run = load_run(run_dir)
    for metric in declared:
        assert per_example_spec(suite, metric) is not None
        recorded = suite.metric(metric)
        if recorded is not None and recorded.value is not None:
            # Unusable (values that do not reproduce the record) would raise here.
            assert extract(run, parse_rule(f"{suite.name}.{metric} >= 0")) is not None, metric


@pytest.mark.parametrize("name", SUITES)
def test_params_class_is_the_generic_argument(name: str) -> None:
    cls = registry.suites.get(name)
    bases = [b for b in getattr(cls, "__orig_bases__", ()) if typing.get_origin(b) is Suite]
    assert bases, f"{name}: subclass Suite[{cls.Params.__name__}], not bare Suite"
    assert typing.get_args(bases[0]) == (cls.Params,)


# ------------------------------------------------------------------ every suite on every kind

from tests.fixtures_kinds import KIND_FIXTURES  # noqa: E402

KINDS = [k for k in registry.model_kinds.names() if k != "hf-classifier"]  # hf: the test above
# Kinds whose adapter.model is a differentiable classifier over the text's tokens
# (harness/models/kinds/embedding_head.py, harness/models/kinds/spliced.py): every kind but hf.
GRADIENT_KINDS = {"setfit", "zero-shot-embedding", "zero-shot-nli", "masked-lm", "causal-lm"}


def test_every_model_kind_has_a_contract_fixture() -> None:
    assert set(registry.model_kinds.names()) == set(KIND_FIXTURES)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", SUITES)
def test_suite_runs_on_every_model_kind(
    name: str, kind: str, tmp_path: Path, tiny_csv: Path, request: pytest.FixtureRequest
) -> None:
    """One run of the suite on a tiny model of the kind: complete, its record valid, and
    "not applicable: <why>" recorded where the kind cannot give what a method needs."""
    cls = registry.suites.get(name)
    if cls.unavailable_reason():
        pytest.skip(f"{name}: {cls.unavailable_reason()}")
    fixture, params = KIND_FIXTURES[kind]
    run = write_run(tmp_path, request.getfixturevalue(fixture), tiny_csv, name, cls.smoke_params)
    raw = json.loads(run.read_text())
    raw["model"].update({"kind": kind, "params": params})
    raw["dataset"]["max_examples"] = 8
    run.write_text(json.dumps(raw))
    result = execute(run, out_dir=tmp_path / "run")
    suite = result.record.suites[0]
    assert result.record.status == "complete", suite.error
    assert suite.metrics and result.record.model.kind == kind
    assert (result.run_dir / RECORD_FILE).read_text() == dump_record(load_record(result.run_dir))
    if name == "explain" and kind in GRADIENT_KINDS:  # torch encoder + differentiable head
        assert not suite.details.get("not_applicable"), suite.details.get("not_applicable")
        assert suite.metric("ig.comprehensiveness.aopc") is not None
        assert suite.metric("ig.completeness.relative_delta") is not None
        assert suite.metric("ablation.comprehensiveness.aopc") is not None
        spliced = kind in {"zero-shot-nli", "masked-lm", "causal-lm"}  # text tokens only
        assert ("attributed_tokens" in suite.details) is spliced
    elif name == "explain":
        assert all(v.startswith("not applicable: ") for v in suite.details["not_applicable"].values())
        assert suite.metric("ablation.comprehensiveness.aopc") is not None
