"""The challenger comparison says what ``harness gate`` says on the same pair of runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.leaderboard.synthetic import Spec, write_run
from harness.reports.challenger import compare


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("challenger")
    champion = write_run(root / "champion", Spec("champion", accuracy=0.86, asr=0.4, p50_ms=10.0, seed=1, n=400))
    challenger = write_run(root / "challenger", Spec("challenger", accuracy=0.74, asr=0.5, p50_ms=12.0, seed=2, n=400))
    return champion, challenger


def test_comparison_agrees_with_harness_gate(pair: tuple[Path, Path], tmp_path: Path) -> None:
    champion, challenger = pair
    comparison = compare(champion, challenger)
    policy = tmp_path / "policy.yaml"
    policy.write_text(comparison.policy_yaml(), encoding="utf-8")
    verdict_file = tmp_path / "verdict.json"
    done = harness("gate", "--baseline", str(champion), "--candidate", str(challenger),
                   "--policy", str(policy), "--json", str(verdict_file))
    assert done.returncode in (0, 1), done.stderr
    gate = {r["metric"]: r for r in json.loads(verdict_file.read_text())["rules"]}
    tested = [p for p in comparison.pairs if p.verdict is not None]
    assert tested and len(gate) == len(tested)
    for p in tested:
        ours, theirs = p.verdict, gate[f"{p.suite}.{p.metric}"]
        assert ours is not None
        assert ours.status == theirs["status"], p.metric
        assert ours.change == theirs["change"], p.metric
        test = theirs["test"]
        assert ours.test is not None and ours.test.method == test["method"]
        assert ours.test.p_value == test["p_value"] and ours.p_adjusted == test["p_adjusted"]
        assert [ours.test.diff_low, ours.test.diff_high] == test["diff_ci"]
    # "Better" reads the gate's own significance: a significant worsening fails the gate rule.
    for p in tested:
        if p.better == "champion":
            assert gate[f"{p.suite}.{p.metric}"]["status"] == "fail"
        if gate[f"{p.suite}.{p.metric}"]["status"] == "fail":
            assert p.better == "champion"
    accuracy = next(p for p in comparison.pairs if (p.suite, p.metric) == ("accuracy", "accuracy"))
    assert accuracy.better == "champion" and accuracy.verdict is not None
    assert accuracy.verdict.test is not None and accuracy.verdict.test.method == "exact McNemar"


def test_untested_metrics_say_why(pair: tuple[Path, Path]) -> None:
    comparison = compare(*pair)
    reasons = {p.why_untested for p in comparison.pairs if p.verdict is None}
    assert reasons <= {"not a score (no direction)", "its name cannot be written as a gate rule", "undefined (null) in one run"}
    assert comparison.count("untested") == sum(1 for p in comparison.pairs if p.better == "untested")


def test_report_section_and_refusal_of_other_splits(pair: tuple[Path, Path], tmp_path: Path) -> None:
    champion, challenger = pair
    out = tmp_path / "r.html"
    done = harness("report", str(champion), "--challenger", str(challenger), "-o", str(out))
    assert done.returncode == 0, done.stderr
    document = out.read_text(encoding="utf-8")
    section = document.split('<section id="challenger">')[1].split("</section>")[0]
    assert "Where the champion is better" in section and "accuracy.accuracy" in section
    assert "harness gate --baseline" in section  # the reproducing policy
    other = write_run(tmp_path / "other", Spec("other", accuracy=0.8, seed=3), split_sha="0" * 64)
    done = harness("report", str(champion), "--challenger", str(other), "-o", str(out))
    assert done.returncode == 2 and "dataset split digest differs" in done.stderr
    done = harness("report", str(champion), "--challenger", str(other), "--allow-mismatch", "-o", str(out))
    assert done.returncode == 0 and "compared despite mismatches" in out.read_text(encoding="utf-8")
