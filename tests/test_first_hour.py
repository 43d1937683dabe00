"""Issue 22: the first hour on the command line — version, JSON listings, one suite in full, no
wrapping off a terminal, whole metric names in the summary, and a gate without a policy file.

Real subprocesses wherever what the user sees is the point (a pipe is not a terminal)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from harness import __version__
from harness.cli import show
from harness.gate.derived import MSG_DERIVED, PROPORTION_TOLERANCE_PT
from harness.records import RunRecord, load_record
from tests.test_gate import make_run


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )


def test_version() -> None:
    proc = harness("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"harness {__version__}"


def test_list_json_and_one_suite_in_full() -> None:
    listed = json.loads(harness("list", "--json").stdout)
    assert {a["name"] for a in listed["artifacts"]} >= {"rotten-tomatoes", "minilm-l6"}
    assert {s["name"] for s in listed["suites"]} >= {"accuracy", "invariance", "robustness"}
    one = json.loads(harness("list", "suites", "invariance", "--json").stdout)
    params = {p["name"]: p for p in one["parameters"]}
    # Read from the suite's own Params model: the defaults and descriptions, not a copy.
    from harness.suites.invariance import InvarianceParams

    for name, field in InvarianceParams.model_fields.items():
        assert params[name]["description"] == field.description
        assert params[name]["default"] == field.get_default(call_default_factory=True)
    assert one["headline"] == "flip_rate" and "typos" in one["measures"]
    text = harness("list", "suites", "invariance")
    assert text.returncode == 0
    assert "headline metric: flip_rate" in text.stdout and "n_bootstrap" in text.stdout


def test_list_unknown_suite_says_did_you_mean() -> None:
    proc = harness("list", "suites", "invarance")
    assert proc.returncode == 2 and "did you mean 'invariance'" in proc.stderr
    assert harness("list", "artifacts", "x").returncode != 0


def test_no_wrapped_lines_off_a_terminal(tiny_run_file: Path, tmp_path: Path) -> None:
    """A second run of a finished folder names it in full on one line, however long the path."""
    out = tmp_path / ("a-rather-long-folder-name-for-a-run-" * 3) / "run-with-long-name"
    assert harness("run", str(tiny_run_file), "--out", str(out)).returncode == 0
    proc = harness("run", str(tiny_run_file), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert len(str(out)) > 120
    line = next(x for x in proc.stderr.splitlines() if x.startswith("already complete"))
    assert line == f"already complete: {out} (use --force to run again)"
    shown = harness("show", str(out))
    assert f"run folder: {out}" in proc.stdout.splitlines()
    record = load_record(out)
    names = [m.name for s in record.suites for m in s.metrics[: show.SHOWN_METRICS]]
    lines = shown.stdout.splitlines()
    assert all(any(f" {n} " in x for x in lines) for n in names)
    check_whole_names_on_a_narrow_terminal(record)


def check_whole_names_on_a_narrow_terminal(record: RunRecord) -> None:
    """On an 80-column terminal the summary still shows every metric name whole."""
    long_name = "templates.first_name.gender.demographic_parity_difference.of_a_long_metric"
    suite = record.suites[0]
    metrics = [suite.metrics[0].model_copy(update={"name": long_name}), *suite.metrics[1:]]
    record = record.model_copy(update={"suites": [suite.model_copy(update={"metrics": metrics})]})
    console = Console(width=80, record=True, force_terminal=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(show, "out", console)
        show.print_summary(record)
    lines = console.export_text().splitlines()
    assert all(len(x) <= 80 for x in lines)
    for m in metrics[: show.SHOWN_METRICS]:
        assert any(f" {m.name} " in x for x in lines), m.name


def test_gate_without_policy_derives_rules_from_headlines(tmp_path: Path) -> None:
    n = 400
    base = make_run(tmp_path / "base", [i % 10 != 0 for i in range(n)])  # 90% right
    same = make_run(tmp_path / "same", [i % 10 != 0 for i in range(n)])
    worse = make_run(tmp_path / "worse", [i % 10 not in (0, 1, 2) for i in range(n)])  # 70%
    ok = harness("gate", "--baseline", str(base), "--candidate", str(same))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    rule = f"accuracy.accuracy: {PROPORTION_TOLERANCE_PT:g}pt significant"
    assert MSG_DERIVED in ok.stderr and rule in ok.stderr
    bad = harness("gate", "--baseline", str(base), "--candidate", str(worse))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAIL" in bad.stdout and rule in bad.stdout
    # A policy file still wins; without a baseline there is nothing to derive from.
    none = harness("gate", "--candidate", str(worse))
    assert none.returncode == 2 and "--policy or --baseline" in none.stderr
