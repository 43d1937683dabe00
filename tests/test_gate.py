"""Gate tests on constructed run folders (record + predictions.jsonl written by harness.store)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from harness import stats
from harness.cli.app import app as harness_app
from harness.errors import ExitCode
from harness.gate.evaluate import GateError, run_gate
from harness.gate.outputs import junit_xml, markdown
from harness.gate.policy import parse_policy
from harness.metrics import classification as mc
from harness.records import (
    PREDICTIONS_FILE,
    DatasetInfo,
    Metric,
    ModelInfo,
    Provenance,
    RunRecord,
    SplitInfo,
    SuiteCapabilities,
    SuiteRecord,
    dump_record,
)
from harness.store import atomic_write_text, example_line, write_manifest

LABELS = ["neg", "pos"]
SPLIT_SHA = "a" * 64


def prediction_rows(labels: Sequence[int], correct: Sequence[bool]) -> list[dict[str, Any]]:
    rows = []
    for i, (label, ok) in enumerate(zip(labels, correct, strict=True)):
        predicted = label if ok else 1 - label
        p = 0.8 if predicted == 1 else 0.2
        rows.append(
            {
                "id": f"ex{i:05d}",
                "label": LABELS[label],
                "predicted": LABELS[predicted],
                "probabilities": [1 - p, p],
            }
        )
    return rows


def accuracy_suite(
    rows: list[dict[str, Any]], *, version: str = "1", params: dict[str, Any] | None = None
) -> SuiteRecord:
    labels = np.array([LABELS.index(r["label"]) for r in rows])
    predicted = np.array([LABELS.index(r["predicted"]) for r in rows])
    right = int(np.sum(labels == predicted))
    ci = stats.wilson_interval(right, len(rows))
    return SuiteRecord(
        name="accuracy",
        version=version,
        params=params or {"n_bootstrap": 200},
        status="ok",
        wall_time_s=0.1,
        examples_file="examples/accuracy.jsonl",
        n_examples=len(rows),
        metrics=[
            Metric(
                name="accuracy",
                value=right / len(rows),
                higher_is_better=True,
                ci_low=ci.low,
                ci_high=ci.high,
                ci_method=ci.method,
                n=len(rows),
            ),
            Metric(
                name="f1_macro",
                value=mc.f1_macro(labels, predicted, 2),
                higher_is_better=True,
                n=len(rows),
            ),
        ],
    )


def make_run(
    folder: Path,
    correct: Sequence[bool],
    *,
    labels: Sequence[int] | None = None,
    split_sha: str = SPLIT_SHA,
    suite_version: str = "1",
    params: dict[str, Any] | None = None,
    extra_suites: Sequence[SuiteRecord] = (),
    extra_files: dict[str, str] | None = None,
    precision: dict[str, Any] | None = None,
) -> Path:
    """A complete run folder: record.json, predictions.jsonl, examples, config, log, manifest."""
    n = len(correct)
    labels = list(labels) if labels is not None else [i % 2 for i in range(n)]
    rows = prediction_rows(labels, correct)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / PREDICTIONS_FILE, "".join(example_line(r) + "\n" for r in rows))
    atomic_write_text(
        folder / "examples" / "accuracy.jsonl",
        "".join(
            example_line({"id": r["id"], "correct": r["label"] == r["predicted"]}) + "\n"
            for r in rows
        ),
    )
    for rel, text in (extra_files or {}).items():
        atomic_write_text(folder / rel, text)
    atomic_write_text(folder / "config.yaml", "name: constructed\nseed: 0\n")
    atomic_write_text(folder / "run.log", "constructed run\n")
    record = RunRecord(
        run_id=folder.name,
        status="complete",
        config={
            "name": "constructed",
            "seed": 0,
            "dataset": {"path": "x.csv"},
            "suites": [{"name": "accuracy"}],
        },
        provenance=Provenance(
            harness_version="0.1.0",
            git_commit=None,
            git_dirty=None,
            python="3.11",
            packages={},
            os="linux",
            cpu="test",
            gpu=None,
            device="cpu",
            torch_threads=1,
            seed=0,
            config_sha256="0" * 64,
            started_utc="2024-01-01T00:00:00Z",
            finished_utc="2024-01-01T00:01:00Z",
            deterministic=True,
        ),
        model=ModelInfo(
            name="m",
            source="path",
            location="/nowhere",
            digest="d" * 64,
            max_length=32,
            label_names=LABELS,
            precision=precision,
        ),
        dataset=DatasetInfo(
            name="constructed",
            source="test",
            eval_split="test",
            label_names=LABELS,
            splits=[SplitInfo(name="test", n=n, sha256=split_sha)],
        ),
        suites=[accuracy_suite(rows, version=suite_version, params=params), *extra_suites],
    )
    atomic_write_text(folder / "record.json", dump_record(record))
    write_manifest(folder)
    return folder


def paired_outcomes(
    n: int, base_right: int, only_base: int, only_cand: int
) -> tuple[list[bool], list[bool]]:
    """Correctness vectors with given discordant counts (the McNemar table)."""
    base = [i < base_right for i in range(n)]
    cand = list(base)
    for i in range(only_base):  # right in baseline, wrong in candidate
        cand[i] = False
    for i in range(only_cand):  # wrong in baseline, right in candidate
        cand[base_right + i] = True
    return base, cand


def policy(*rules: str, **extra: Any) -> Any:
    return parse_policy({"rules": list(rules), **extra}, source="test-policy")


def app() -> typer.Typer:
    return harness_app


# ------------------------------------------------------------------ significance


def test_one_point_drop_over_20000_examples_fails(tmp_path: Path) -> None:
    n = 20_000
    base, cand = paired_outcomes(n, base_right=17_000, only_base=300, only_cand=100)  # 85% -> 84%
    b, c = make_run(tmp_path / "base", base), make_run(tmp_path / "cand", cand)
    verdict = run_gate(b, c, policy("accuracy.accuracy: -0.5pt significant"))
    (rule,) = verdict.rules
    assert rule.change == pytest.approx(-0.01)
    assert rule.test is not None and rule.test.method == "exact McNemar"
    assert rule.test.p_value == pytest.approx(stats.mcnemar_exact(300, 100))
    assert rule.p_adjusted is not None and rule.p_adjusted < 0.05
    assert rule.status == "fail" and verdict.exit_code == ExitCode.REGRESSION


def test_same_drop_over_200_examples_is_inconclusive(tmp_path: Path) -> None:
    base, cand = paired_outcomes(200, base_right=170, only_base=3, only_cand=1)  # 85% -> 84%
    b, c = make_run(tmp_path / "base", base), make_run(tmp_path / "cand", cand)
    verdict = run_gate(b, c, policy("accuracy.accuracy: -0.5pt significant"))
    (rule,) = verdict.rules
    assert rule.change == pytest.approx(-0.01)
    # 4 discordant pairs: exact McNemar cannot reach 0.05 below 6, so the gate cannot tell.
    assert rule.status == "inconclusive" and "only 4 of 200 examples differ" in rule.message
    assert rule.test is not None and rule.test.min_informative == 6
    assert verdict.status == "inconclusive" and verdict.exit_code == ExitCode.OK  # warn
    # Without the significance requirement the same drop breaks the tolerance.
    strict = run_gate(b, c, policy("accuracy.accuracy: -0.5pt"))
    assert strict.rules[0].status == "fail"


def test_bound_and_tolerance_rules(tmp_path: Path) -> None:
    base, cand = paired_outcomes(400, base_right=340, only_base=4, only_cand=0)  # 85% -> 84%
    b, c = make_run(tmp_path / "base", base), make_run(tmp_path / "cand", cand)
    verdict = run_gate(
        b,
        c,
        policy(
            "accuracy.accuracy >= 0.80",
            "accuracy.accuracy >= 0.845",
            "accuracy.accuracy: -1pt",
            "accuracy.accuracy: -2%",
            "accuracy.f1_macro: -0.001",
        ),
    )
    # The -1pt and -2% rules hold on the point estimate, but 400 examples with 4 discordant
    # pairs cannot see a 1-point drop: they are inconclusive, not a pass.
    assert [r.status for r in verdict.rules] == [
        "pass", "fail", "inconclusive", "inconclusive", "fail"
    ]
    assert "could only detect a change of" in verdict.rules[2].message
    assert "more than the tolerated 0.01" in verdict.rules[2].message
    assert verdict.exit_code == ExitCode.REGRESSION


def test_f1_uses_paired_randomization(tmp_path: Path) -> None:
    base, cand = paired_outcomes(2000, base_right=1700, only_base=200, only_cand=0)
    b, c = make_run(tmp_path / "base", base), make_run(tmp_path / "cand", cand)
    verdict = run_gate(b, c, policy("accuracy.f1_macro: -0.5pt significant", n_boot=300))
    (rule,) = verdict.rules
    assert rule.test is not None and rule.test.method.startswith("paired randomization")
    assert rule.test.kind == "randomization" and rule.test.informative == 200
    assert rule.test.diff_high is not None and rule.test.diff_high < 0
    assert rule.status == "fail"


def test_holm_correction_across_rules(tmp_path: Path) -> None:
    # Choose a discordant table whose exact McNemar p lies between alpha/2 and alpha.
    only_base, only_cand = 40, 22
    raw_p = stats.mcnemar_exact(only_base, only_cand)
    assert 0.025 < raw_p < 0.05
    base, cand = paired_outcomes(1000, base_right=800, only_base=only_base, only_cand=only_cand)
    b, c = make_run(tmp_path / "base", base), make_run(tmp_path / "cand", cand)
    rules = ("accuracy.accuracy: -0pt significant", "accuracy.accuracy: -0.1pt significant")
    uncorrected = run_gate(b, c, policy(*rules, correction="none"))
    assert [r.status for r in uncorrected.rules] == ["fail", "fail"]
    corrected = run_gate(b, c, policy(*rules))
    # Not significant after Holm; 62 discordant pairs in 1,000 cannot see a 0-0.1pt drop.
    assert [r.status for r in corrected.rules] == ["inconclusive", "inconclusive"]
    assert [r.p_adjusted for r in corrected.rules] == pytest.approx(stats.holm([raw_p, raw_p]))
    assert all("Holm-adjusted" in r.message for r in corrected.rules)


# ------------------------------------------------------------------ latency and declared metrics


def latency_suite(samples: list[float], *, with_samples: bool = True) -> SuiteRecord:
    arr = np.sort(np.asarray(samples))
    ci = stats.order_statistic_ci(arr, 0.99)
    details = {
        "per_example": {"single_stream.p99_ms": {"samples": samples, "aggregate": "quantile:0.99"}}
    }
    return SuiteRecord(
        name="latency",
        version="1",
        params={"n_calls": len(samples)},
        status="ok",
        wall_time_s=1.0,
        metrics=[
            Metric(
                name="single_stream.p99_ms",
                value=float(np.quantile(arr, 0.99)),
                higher_is_better=False,
                ci_low=ci.low,
                ci_high=ci.high,
                ci_method=ci.method,
                n=len(samples),
                unit="ms",
            )
        ],
        details=details if with_samples else {},
    )


@pytest.mark.parametrize("with_samples", [True, False])
def test_latency_rule(tmp_path: Path, with_samples: bool) -> None:
    rng = np.random.default_rng(0)
    base_ms = list(10 + rng.gamma(2.0, 1.0, size=400))
    cand_ms = [x * 1.3 for x in base_ms]  # every call 30% slower
    labels_ok = [True] * 50
    b = make_run(
        tmp_path / "base",
        labels_ok,
        extra_suites=[latency_suite(base_ms, with_samples=with_samples)],
    )
    c = make_run(
        tmp_path / "cand",
        labels_ok,
        extra_suites=[latency_suite(cand_ms, with_samples=with_samples)],
    )
    verdict = run_gate(
        b,
        c,
        policy(
            "latency.single_stream.p99_ms: +10%",
            "latency.single_stream.p99_ms: +50%",
            "latency.single_stream.p99_ms: +10% significant",
            "latency.single_stream.p99_ms <= 1000",
            n_boot=500,
        ),
    )
    assert [r.status for r in verdict.rules] == ["fail", "pass", "fail", "pass"]
    sig = verdict.rules[2]
    assert sig.test is not None
    if with_samples:
        assert sig.test.method.startswith("two-sample permutation") and sig.test.p_value is not None
    else:  # no distribution recorded: the verdict says it fell back to interval overlap
        assert sig.test.method == "CI overlap"
        assert any("latency.jsonl" in n and "intervals overlap" in n for n in verdict.notes)


def test_wrong_sign_for_direction_is_an_error(tmp_path: Path) -> None:
    b = make_run(tmp_path / "base", [True] * 10)
    verdict = run_gate(b, b, policy("accuracy.accuracy: +1pt"))
    assert verdict.rules[0].status == "error" and "higher is better" in verdict.rules[0].message
    assert verdict.exit_code == ExitCode.USAGE


def test_declared_per_example_metric_paired(tmp_path: Path) -> None:
    def robustness(successes: list[bool]) -> SuiteRecord:
        return SuiteRecord(
            name="robustness",
            version="1",
            params={},
            status="ok",
            wall_time_s=1.0,
            examples_file="examples/robustness.jsonl",
            n_examples=len(successes),
            metrics=[
                Metric(
                    name="pwws.attack_success_rate",
                    value=float(np.mean(successes)),
                    higher_is_better=False,
                )
            ],
            details={
                "per_example": {
                    "pwws.attack_success_rate": {"field": "success", "where": {"recipe": "pwws"}}
                }
            },
        )

    def rows(successes: list[bool]) -> str:
        return "".join(
            example_line({"id": f"ex{i:05d}", "recipe": "pwws", "success": s}) + "\n"
            for i, s in enumerate(successes)
        )

    base_s = [i % 4 == 0 for i in range(400)]  # 25%
    cand_s = [i % 2 == 0 for i in range(400)]  # 50%
    ok = [True] * 20
    b = make_run(
        tmp_path / "base",
        ok,
        extra_suites=[robustness(base_s)],
        extra_files={"examples/robustness.jsonl": rows(base_s)},
    )
    c = make_run(
        tmp_path / "cand",
        ok,
        extra_suites=[robustness(cand_s)],
        extra_files={"examples/robustness.jsonl": rows(cand_s)},
    )
    verdict = run_gate(
        b, c, policy("robustness.pwws.attack_success_rate: +5pt significant", n_boot=300)
    )
    (rule,) = verdict.rules
    assert rule.test is not None and rule.test.method == "exact McNemar" and rule.test.n == 400
    assert rule.test.kind == "binary"
    assert rule.status == "fail"


# ------------------------------------------------------------------ mismatches and errors


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"split_sha": "b" * 64}, "dataset split digest differs"),
        ({"suite_version": "2"}, "suite 'accuracy' version differs"),
        ({"params": {"n_bootstrap": 999}}, "suite 'accuracy' parameters differ"),
    ],
)
def test_mismatch_refused_unless_allowed(
    tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    b = make_run(tmp_path / "base", [True] * 30)
    c = make_run(tmp_path / "cand", [True] * 30, **change)
    pol = policy("accuracy.accuracy >= 0.9")
    with pytest.raises(GateError) as info:
        run_gate(b, c, pol)
    assert expected in info.value.message and "--allow-mismatch" in info.value.message
    verdict = run_gate(b, c, pol, allow_mismatch=True)
    assert verdict.status == "pass" and any(expected in m for m in verdict.mismatches)
    assert any("--allow-mismatch" in n for n in verdict.notes)
    assert "allow-mismatch" in markdown(verdict)


def _probe(agreement: float, warning: str | None = None) -> dict[str, Any]:
    return {"agreement": agreement, "n": 512, "max_abs_dp": 0.01, "warning": warning}


def test_precision_difference_is_said_not_refused(tmp_path: Path) -> None:
    """A bf16 candidate against an fp32 baseline (old record: no precision field) is gated, and
    the verdict says the precisions differ and what the candidate's fp32 probe found; a probe
    that failed its threshold is quoted whatever the baseline's precision."""
    b = make_run(tmp_path / "base", [True] * 30)
    c = make_run(
        tmp_path / "cand", [True] * 30, precision={"precision": "bf16", "agreement": _probe(0.998)}
    )
    verdict = run_gate(b, c, policy("accuracy.accuracy >= 0.9"))
    assert verdict.status == "pass" and not verdict.mismatches
    assert any("evaluation precision differs: fp32" in n and "vs bf16" in n for n in verdict.notes)
    assert any("bf16 agreed with fp32 on 99.80% of 512" in n for n in verdict.notes)
    assert "evaluation precision differs" in markdown(verdict)

    same = make_run(tmp_path / "same", [True] * 30, precision={"precision": "fp32"})
    assert run_gate(b, same, policy("accuracy.accuracy >= 0.9")).notes == ()

    failed = {"precision": "int8", "agreement": _probe(0.95, "agreement 95.00% is below 99.50%")}
    d = make_run(tmp_path / "int8", [True] * 30, precision=failed)
    e = make_run(tmp_path / "int8b", [True] * 30, precision=failed)
    notes = run_gate(d, e, policy("accuracy.accuracy >= 0.9")).notes
    assert not any("differs" in n for n in notes)
    assert sum("below 99.50%" in n for n in notes) == 2  # once per run, not once per comparison


def test_missing_metric_is_an_error(tmp_path: Path) -> None:
    b = make_run(tmp_path / "base", [True] * 10)
    verdict = run_gate(b, b, policy("accuracy.acuracy >= 0.5", "bias.gap: +1pt"))
    assert [r.status for r in verdict.rules] == ["error", "error"]
    assert "no metric 'acuracy'" in verdict.rules[0].message
    assert "no suite 'bias'" in verdict.rules[1].message


# ------------------------------------------------------------------ outputs and CLI


def test_junit_xml_validates_against_schema(tmp_path: Path) -> None:
    from lxml import etree

    base, cand = paired_outcomes(400, base_right=340, only_base=8, only_cand=0)
    b, c = make_run(tmp_path / "base", base), make_run(tmp_path / "cand", cand)
    verdict = run_gate(
        b, c, policy("accuracy.accuracy >= 0.5", "accuracy.accuracy: -1pt", "nope.x >= 1")
    )
    schema = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "data" / "junit.xsd")))
    doc = etree.fromstring(junit_xml(verdict))
    schema.assertValid(doc)
    cases = doc.findall(".//testcase")
    assert len(cases) == 3
    assert [c.find("failure") is not None for c in cases] == [False, True, False]
    assert cases[2].find("error") is not None


def test_cli_gate_outputs_and_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base, cand = paired_outcomes(20_000, base_right=17_000, only_base=300, only_cand=100)
    b, c = make_run(tmp_path / "base", base), make_run(tmp_path / "cand", cand)
    pol = tmp_path / "gate.yaml"
    pol.write_text(
        "alpha: 0.05\nrules:\n  - accuracy.accuracy >= 0.80\n"
        "  - accuracy.accuracy: -0.5pt significant\n"
    )
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out = {k: tmp_path / f"verdict.{k}" for k in ("xml", "md", "json")}
    result = CliRunner().invoke(
        app(),
        [
            "gate",
            "--baseline",
            str(b),
            "--candidate",
            str(c / "record.json"),
            "--policy",
            str(pol),
            "--junit",
            str(out["xml"]),
            "--markdown",
            str(out["md"]),
            "--json",
            str(out["json"]),
        ],
    )
    assert result.exit_code == ExitCode.REGRESSION, result.output
    verdict = json.loads(out["json"].read_text())
    assert verdict["status"] == "fail" and [r["status"] for r in verdict["rules"]] == [
        "pass",
        "fail",
    ]
    assert "❌" in out["md"].read_text() and summary.read_text() == out["md"].read_text()
    ok = CliRunner().invoke(
        app(), ["gate", "--baseline", str(b), "--candidate", str(b), "--policy", str(pol)]
    )
    assert ok.exit_code == ExitCode.OK, ok.output


def test_cli_gate_refuses_mismatch_and_bad_policy(tmp_path: Path) -> None:
    b = make_run(tmp_path / "base", [True] * 30)
    c = make_run(tmp_path / "cand", [True] * 30, split_sha="c" * 64)
    pol = tmp_path / "gate.yaml"
    pol.write_text("rules:\n  - accuracy.accuracy: -1pt\n")
    args = ["gate", "--baseline", str(b), "--candidate", str(c), "--policy", str(pol)]
    refused = CliRunner().invoke(app(), args)
    assert refused.exit_code == ExitCode.USAGE and "not comparable" in refused.output
    allowed = CliRunner().invoke(app(), [*args, "--allow-mismatch"])
    assert allowed.exit_code == ExitCode.OK, allowed.output
    pol.write_text("rules:\n  - accuracy.accuracy >= eighty\n")
    bad = CliRunner().invoke(app(), args)
    assert (
        bad.exit_code == ExitCode.USAGE and "rules[0]" in bad.output and "column 22" in bad.output
    )


def test_hostile_metric_text_is_escaped(tmp_path: Path) -> None:
    evil = SuiteRecord(
        name="evil",
        version="1",
        params={},
        status="ok",
        wall_time_s=0.0,
        metrics=[Metric(name="<script>alert(1)</script>|x", value=1.0, higher_is_better=True)],
    )
    b = make_run(tmp_path / "base", [True] * 10, extra_suites=[evil])
    verdict = run_gate(b, b, policy("evil.nothing >= 1"))
    assert "<script>" in verdict.rules[0].message  # the message names the metrics present...
    xml = junit_xml(verdict).decode()
    assert "<script>" not in xml and "&lt;script&gt;" in xml  # ...escaped in every output
    md = markdown(verdict)
    assert "<script>" not in md and "\\|x" in md


def _robustness_run(
    folder: Path,
    results: list[str],
    *,
    recorded: float | None = None,
    declare: bool = False,
    capabilities: SuiteCapabilities | None = None,
) -> Path:
    """The robustness suite's own row format. Without ``declare`` (and ``capabilities``, as a
    record older than schema 1.2) the gate reads it with the legacy built-in declaration."""
    attacked = [r for r in results if r != "skipped"]
    rate = sum(r == "succeeded" for r in attacked) / len(attacked)
    per_example = {
        "pwws.attack_success_rate": {
            "field": "result", "where": {"recipe": "pwws"}, "positive": ["succeeded"],
            "exclude": {"result": ["skipped"]},
        }
    }
    suite = SuiteRecord(
        capabilities=capabilities,
        details={"per_example": per_example} if declare else {},
        name="robustness",
        version="1",
        params={},
        status="ok",
        wall_time_s=1.0,
        examples_file="examples/robustness.jsonl",
        n_examples=len(results),
        metrics=[
            Metric(
                name="pwws.attack_success_rate",
                value=rate if recorded is None else recorded,
                higher_is_better=False,
                ci_low=0.0,
                ci_high=1.0,
            )
        ],
    )
    rows = "".join(
        example_line(
            {"id": f"pwws:ex{i:05d}", "recipe": "pwws", "example_id": f"ex{i:05d}", "result": r}
        )
        + "\n"
        for i, r in enumerate(results)
    )
    return make_run(
        folder, [True] * 20, extra_suites=[suite], extra_files={"examples/robustness.jsonl": rows}
    )


def test_builtin_robustness_decomposition_and_self_check(tmp_path: Path) -> None:
    base = [
        "skipped" if i % 10 == 0 else ("succeeded" if i % 4 == 0 else "failed") for i in range(400)
    ]
    cand = [
        "skipped" if i % 10 == 0 else ("succeeded" if i % 2 == 0 else "failed") for i in range(400)
    ]
    b = _robustness_run(tmp_path / "base", base)
    c = _robustness_run(tmp_path / "cand", cand)
    pol = policy("robustness.pwws.attack_success_rate: +5pt significant", n_boot=300)
    (rule,) = run_gate(b, c, pol).rules
    assert rule.test is not None and rule.test.method == "exact McNemar"
    assert rule.test.n == sum(r != "skipped" for r in base)  # skipped rows are not attacked
    assert rule.status == "fail"
    # Rows that do not reproduce the recorded rate are not used as evidence.
    forged = _robustness_run(tmp_path / "forged", cand, recorded=0.9)
    verdict = run_gate(b, forged, pol)
    assert verdict.rules[0].test is not None and verdict.rules[0].test.method == "CI overlap"
    assert any("do not reproduce the recorded value" in n for n in verdict.notes)


def test_legacy_declarations_only_for_records_without_capabilities(tmp_path: Path) -> None:
    """A record that carries capabilities (schema 1.2) declares its own per-example values; the
    gate no longer guesses them from the suite's name."""
    base = ["succeeded" if i % 4 == 0 else "failed" for i in range(400)]
    cand = ["succeeded" if i % 2 == 0 else "failed" for i in range(400)]
    pol = policy("robustness.pwws.attack_success_rate: +5pt significant", n_boot=300)
    caps = SuiteCapabilities(headline="attack_success_rate", outcome_kinds=["binary"])
    runs = {
        (declare, c is not None): (
            _robustness_run(tmp_path / f"b{declare}{c is None}", base, declare=declare, capabilities=c),
            _robustness_run(tmp_path / f"c{declare}{c is None}", cand, declare=declare, capabilities=c),
        )
        for declare in (False, True)
        for c in (None, caps)
    }
    methods = {}
    for key, (b, c) in runs.items():
        test = run_gate(b, c, pol).rules[0].test
        assert test is not None
        methods[key] = test.method
    assert methods == {
        (False, False): "exact McNemar",  # pre-1.2 record: the legacy declaration
        (True, False): "exact McNemar",
        (False, True): "CI overlap",  # declares capabilities but no per-example values
        (True, True): "exact McNemar",  # what new records of the suite carry
    }
