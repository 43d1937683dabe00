"""Issue 14: gate verdicts at the edges — failed predictions, tiny n, power, equivalence, seeds.

Every p-value and interval here is checked against a reference (scipy, statsmodels,
scikit-learn, or a brute-force enumeration through scikit-learn) on the same inputs.
"""

from __future__ import annotations

import itertools
import json
import logging
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import f1_score
from typer.testing import CliRunner

from harness.audit.verify import verify_run
from harness.data import Dataset
from harness.errors import ExitCode, RecordError
from harness.gate.evaluate import run_gate
from harness.gate.evidence import binary_result, continuous_result
from harness.gate.inputs import PredictionTable, load_run, read_predictions
from harness.gate.outputs import junit_xml, markdown
from harness.gate.plan import plan
from harness.gate.randomization import randomization_result
from harness.gate.result import EvidenceSettings
from harness.gate.scorers import prediction_metric
from harness.predictions import Predictions
from harness.records import PREDICTIONS_FILE, Metric, SuiteRecord, dump_record, load_record
from harness.stats import paired
from harness.store import ExampleLog, atomic_write_text, example_line, write_manifest
from harness.suites.accuracy import AccuracyParams, AccuracySuite
from harness.suites.base import SuiteContext
from tests.test_gate import LABELS, app, make_run, policy

SETTINGS = EvidenceSettings(alpha=0.05, alpha_power=0.05, power=0.8, n_perm=2000, n_boot=500, seed=0)


# ------------------------------------------------------------------ defect 1: a failed prediction


def run_with_errors(folder: Path, correct: list[bool], errors: dict[int, str]) -> Path:
    """A run folder whose accuracy record comes from the real suite, with error rows."""
    make_run(folder, correct)
    rows = [json.loads(line) for line in (folder / PREDICTIONS_FILE).read_text().splitlines()]
    for i, reason in errors.items():
        rows[i] = {"id": rows[i]["id"], "label": rows[i]["label"], "predicted": None,
                   "probabilities": None, "error": reason}
    atomic_write_text(folder / PREDICTIONS_FILE, "".join(example_line(r) + "\n" for r in rows))
    ok = [r for r in rows if r["predicted"] is not None]
    preds = Predictions(
        ids=tuple(r["id"] for r in ok),
        labels=tuple(LABELS.index(r["label"]) for r in ok),
        probabilities=np.asarray([r["probabilities"] for r in ok]),
        errors={r["id"]: r["error"] for r in rows if r["predicted"] is None},
    )
    data = Dataset(
        name="constructed", split="test", ids=tuple(r["id"] for r in rows),
        texts=tuple("t" for _ in rows), labels=tuple(LABELS.index(r["label"]) for r in rows),
        label_names=tuple(LABELS),
    )
    log = ExampleLog(folder / "examples" / "scratch.jsonl").open()
    ctx = SuiteContext(seed=0, run_dir=folder, examples=log, logger=logging.getLogger("t"),
                       predictions=lambda: preds)
    outcome = AccuracySuite(params=AccuracyParams(n_bootstrap=50)).run(None, data, ctx)  # type: ignore[arg-type]
    log.close()
    (folder / "examples" / "scratch.jsonl").unlink()
    record = load_record(folder)
    suite = record.suites[0].model_copy(update={"metrics": outcome.metrics})
    atomic_write_text(folder / "record.json", dump_record(record.model_copy(update={"suites": [suite]})))
    write_manifest(folder)
    return folder


def test_one_failed_prediction_gates_and_verifies(tmp_path: Path) -> None:
    correct = [i % 7 != 0 for i in range(300)]
    base = run_with_errors(tmp_path / "base", correct, {})
    cand = run_with_errors(tmp_path / "cand", correct, {5: "model raised RuntimeError: boom"})
    table = read_predictions(cand / PREDICTIONS_FILE, LABELS)
    assert len(table.ids) == 300 and table.errors == (("ex00005", "model raised RuntimeError: boom"),)
    assert not verify_run(cand).problems  # the valid error row is not tampering
    bound = run_gate(base, cand, policy("accuracy.accuracy >= 0.5"))
    assert bound.status == "pass" and bound.exit_code == ExitCode.OK
    verdict = run_gate(base, cand, policy("accuracy.accuracy: -1pt significant"))
    (rule,) = verdict.rules
    assert rule.test is not None and rule.test.n == 299  # compared on what both runs answered
    assert "1 candidate example(s) without a prediction" in (rule.test.note or "")


def test_null_prediction_without_a_reason_is_a_clear_error(tmp_path: Path) -> None:
    folder = make_run(tmp_path / "run", [True] * 5)
    rows = (folder / PREDICTIONS_FILE).read_text().splitlines()
    bad = json.loads(rows[2]) | {"predicted": None, "probabilities": None}
    rows[2] = json.dumps(bad)
    (folder / PREDICTIONS_FILE).write_text("\n".join(rows) + "\n")
    with pytest.raises(RecordError, match=r"line 3: 'predicted' is null but the row gives no 'error'"):
        read_predictions(folder / PREDICTIONS_FILE, LABELS)


# ------------------------------------------------------------------ defect 2: tiny n


def declared_run(folder: Path, outcomes: dict[str, bool], metric: str = "pwws.attack_success_rate") -> Path:
    suite = SuiteRecord(
        name="robustness", version="1", params={}, status="ok", wall_time_s=1.0,
        examples_file="examples/robustness.jsonl", n_examples=len(outcomes),
        metrics=[Metric(name=metric, value=float(np.mean(list(outcomes.values()))), higher_is_better=False)],
        details={"per_example": {metric: {"field": "success"}}},
    )
    rows = "".join(example_line({"id": k, "success": v}) + "\n" for k, v in outcomes.items())
    return make_run(folder, [True] * 10, extra_suites=[suite], extra_files={"examples/robustness.jsonl": rows})


@pytest.mark.parametrize("n", [1, 2, 3])
def test_few_examples_that_all_moved_are_inconclusive_with_the_exact_p(tmp_path: Path, n: int) -> None:
    ids = [f"a{i}" for i in range(n)]
    base = declared_run(tmp_path / "b", dict.fromkeys(ids, False))
    cand = declared_run(tmp_path / "c", dict.fromkeys(ids, True))
    (rule,) = run_gate(base, cand, policy("robustness.pwws.attack_success_rate: +1pt significant")).rules
    reference = sps.binomtest(n, n, 0.5).pvalue  # exact sign test: 1.0, 0.5, 0.25
    assert rule.test is not None and rule.test.p_value == pytest.approx(reference)
    assert rule.status == "inconclusive" and "needs at least 6" in rule.message


def test_exact_mcnemar_agrees_with_statsmodels() -> None:
    from statsmodels.stats.contingency_tables import mcnemar

    rng = np.random.default_rng(3)
    for _ in range(50):
        a, b = rng.random(40) < 0.7, rng.random(40) < 0.6
        table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
        result = binary_result(a, b, SETTINGS)
        assert result.p_value == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-10)


# ------------------------------------------------------------------ the other tests vs references


@pytest.mark.parametrize("n", [4, 9, 15])
def test_sign_flip_exact_equals_scipy_permutation_test(n: int) -> None:
    rng = np.random.default_rng(n)
    a, b = rng.gamma(2.0, 1.0, n), rng.gamma(2.0, 1.2, n)
    ours = continuous_result(a, b, SETTINGS).p_value
    ref = sps.permutation_test(
        (b, a), lambda x, y: np.mean(x - y), permutation_type="samples", n_resamples=np.inf
    ).pvalue
    assert ours == pytest.approx(ref, rel=1e-9)


def test_randomization_on_macro_f1_equals_brute_force_through_sklearn() -> None:
    rng = np.random.default_rng(1)
    n, k = 30, 3
    y = rng.integers(0, k, n)
    pa = np.where(rng.random(n) < 0.7, y, rng.integers(0, k, n))
    pb = pa.copy()
    flip = rng.choice(n, 9, replace=False)
    pb[flip] = (pb[flip] + 1) % k
    names = ["a", "b", "c"]
    table = lambda p: PredictionTable(tuple(map(str, range(n))), y, p, np.zeros((n, 0)))  # noqa: E731
    metric = prediction_metric("f1_macro", names, 15)
    assert metric is not None
    result = randomization_result(metric, table(pa), table(pb), k, SETTINGS)

    def f1(p: Any) -> float:
        return float(f1_score(y, p, average="macro", labels=range(k), zero_division=np.nan))

    observed = abs(f1(pb) - f1(pa))
    hits = 0
    for bits in itertools.product([False, True], repeat=len(flip)):
        swap = np.zeros(n, dtype=bool)
        swap[flip[list(bits)]] = True
        first, second = np.where(swap, pb, pa), np.where(swap, pa, pb)
        hits += abs(f1(second) - f1(first)) >= observed - 1e-12
    assert result.p_value == pytest.approx(hits / 2 ** len(flip))
    assert result.estimate == pytest.approx(f1(pb) - f1(pa))


def test_two_sample_permutation_matches_scipy_exact() -> None:
    from harness.gate.evidence import two_sample_result

    rng = np.random.default_rng(0)
    a, b = rng.gamma(2, 1, 7), rng.gamma(2, 1, 7) + 1.0
    ours = two_sample_result(a, b, 0.5, SETTINGS.__class__(**{**SETTINGS.__dict__, "n_perm": 20000})).p_value
    ref = sps.permutation_test(
        (b, a), lambda x, y, axis: np.quantile(x, 0.5, axis=axis) - np.quantile(y, 0.5, axis=axis),
        permutation_type="independent", n_resamples=np.inf, vectorized=True,
    ).pvalue
    assert ours == pytest.approx(ref, abs=0.01)  # Monte Carlo (20,000 draws) vs exact


def test_tango_restricted_mle_maximises_the_likelihood() -> None:
    """The closed-form restricted MLE in Tango's score equals a numerical maximisation."""
    from scipy.optimize import minimize_scalar

    for up, down, n, d0 in [(12, 5, 60, 0.05), (0, 0, 30, -0.1), (3, 9, 200, 0.0), (20, 1, 40, 0.3)]:
        def nll(p_down: float, up: int = up, down: int = down, n: int = n, d0: float = d0) -> float:
            p_up, rest = p_down + d0, 1 - 2 * p_down - d0
            if p_up <= 0 or rest <= 0 or p_down <= 0:
                return float(np.inf)
            return float(-(up * np.log(p_up) + down * np.log(p_down) + (n - up - down) * np.log(rest)))

        lo = max(0.0, -d0) + 1e-12
        best = minimize_scalar(nll, bounds=(lo, (1 - d0) / 2 - 1e-12), method="bounded", options={"xatol": 1e-12})
        w = -up - down + (2 * n - up + down) * d0
        closed = (np.sqrt(w * w + 8 * n * down * d0 * (1 - d0)) - w) / (4 * n)
        assert closed == pytest.approx(best.x, abs=1e-6)
    interval = paired.tango_interval(0, 0, 20)
    assert interval.low is not None and interval.low < 0 < interval.high  # never a point  # type: ignore[operator]


def test_power_functions_agree_with_statsmodels_and_simulation() -> None:
    from statsmodels.stats.contingency_tables import mcnemar
    from statsmodels.stats.power import TTestPower

    effect = TTestPower().solve_power(nobs=25, alpha=0.05, power=0.8)
    assert paired.t_mde(25, 2.0, alpha=0.05, power=0.8) == pytest.approx(2.0 * effect, rel=1e-6)
    rng = np.random.default_rng(0)
    n, p_up, p_down = 120, 0.12, 0.04
    rejections = 0
    reps = 2000
    for _ in range(reps):
        cells = rng.multinomial(n, [p_up, p_down, 1 - p_up - p_down])
        rejections += mcnemar([[0, cells[1]], [cells[0], 0]], exact=True).pvalue < 0.05
    simulated = rejections / reps
    assert paired.mcnemar_power(n, p_up, p_down, alpha=0.05) == pytest.approx(simulated, abs=3 * np.sqrt(0.25 / reps))


# ------------------------------------------------------------------ power-aware verdicts


def churned(n: int, drop: float, churn: float, seed: int = 0) -> tuple[list[bool], list[bool]]:
    """Two runs at ~85% whose outcomes differ on a share ``churn`` of examples, the candidate
    worse by ``drop`` (as two fine-tunes of different seeds differ)."""
    rng = np.random.default_rng(seed)
    base = rng.random(n) < 0.85
    cand = base.copy()
    down = rng.choice(np.flatnonzero(base), round(n * (churn + drop) / 2), replace=False)
    up = rng.choice(np.flatnonzero(~base), round(n * (churn - drop) / 2), replace=False)
    cand[down], cand[up] = False, True
    return base.tolist(), cand.tolist()


def test_planted_three_point_drop_needs_enough_examples(tmp_path: Path) -> None:
    rule = "accuracy.accuracy: -1pt significant"
    small = [make_run(tmp_path / f"s{i}", o) for i, o in enumerate(churned(300, 0.03, 0.10))]
    (few,) = run_gate(small[0], small[1], policy(rule)).rules
    assert few.change == pytest.approx(-0.03)
    assert few.status == "inconclusive" and "could only detect a change of" in few.message
    assert few.test is not None and few.test.mde is not None and few.test.mde > 0.03
    big = [make_run(tmp_path / f"b{i}", o) for i, o in enumerate(churned(20_000, 0.03, 0.10))]
    (many,) = run_gate(big[0], big[1], policy(rule)).rules
    assert many.status == "fail" and many.test is not None and (many.test.mde or 1) < 0.01
    # --plan before any run: how many examples this policy needs (discordance measured on the
    # small pair, as two baseline replicates would give it).
    (row,) = plan(policy(rule), [load_run(small[0]), load_run(small[1])])
    assert row.n_required is not None and 300 < row.n_required < 20_000
    at_plan = binary_result(*map(np.asarray, churned(row.n_required, 0.0, 0.10)), SETTINGS)
    assert at_plan.mde is not None and at_plan.mde <= 0.0102  # detects the tolerance there


def test_on_inconclusive_policy_and_outputs(tmp_path: Path) -> None:
    base, cand = (make_run(tmp_path / f"r{i}", o) for i, o in enumerate(churned(300, 0.0, 0.10)))
    warn = run_gate(base, cand, policy("accuracy.accuracy: -1pt significant"))
    assert warn.status == "inconclusive" and warn.exit_code == ExitCode.OK
    assert "could not tell" in markdown(warn)
    skipped = junit_xml(warn).decode()
    assert "<skipped" in skipped and 'skipped="1"' in skipped
    fail = run_gate(base, cand, policy("accuracy.accuracy: -1pt significant", on_inconclusive="fail"))
    assert fail.exit_code == ExitCode.REGRESSION and "<failure" in junit_xml(fail).decode()


# ------------------------------------------------------------------ equivalence (TOST)


def test_equivalence_rules(tmp_path: Path) -> None:
    rule = "accuracy.accuracy: within 1pt"
    same = [make_run(tmp_path / f"e{i}", o) for i, o in enumerate(churned(20_000, 0.0, 0.04))]
    assert run_gate(same[0], same[1], policy(rule)).rules[0].status == "pass"
    few = [make_run(tmp_path / f"f{i}", o) for i, o in enumerate(churned(300, 0.0, 0.04))]
    (unsure,) = run_gate(few[0], few[1], policy(rule)).rules
    assert unsure.status == "inconclusive" and "crosses the margin" in unsure.message
    far = [make_run(tmp_path / f"x{i}", o) for i, o in enumerate(churned(20_000, 0.05, 0.10))]
    assert run_gate(far[0], far[1], policy(rule)).rules[0].status == "fail"


def test_continuous_equivalence_interval_is_statsmodels_ttost() -> None:
    from statsmodels.stats.weightstats import ttost_paired

    rng = np.random.default_rng(2)
    a = rng.normal(0.3, 0.1, 200)
    b = a + rng.normal(0.002, 0.03, 200)
    s = SETTINGS.__class__(**{**SETTINGS.__dict__, "equivalence_alpha": 0.05})
    result = continuous_result(a, b, s)
    margin = 0.008
    p_tost = ttost_paired(b, a, -margin, margin)[0]
    inside = -margin < (result.equivalence_low or -1) and (result.equivalence_high or 1) < margin
    assert inside == (p_tost < 0.05)
    # The (1 - 2 alpha) interval's ends are where the one-sided tests reach alpha.
    at_low = ttost_paired(b, a, result.equivalence_low, 1.0)[1][1]  # type: ignore[arg-type]
    assert at_low == pytest.approx(0.05, abs=1e-6)


# ------------------------------------------------------------------ replicates (seed variance)


def replicate_runs(folder: Path, side: str, seeds: int, shift: float, seed_sd: float) -> list[Path]:
    """Runs of one recipe with different seeds: each seed moves accuracy by N(0, seed_sd)."""
    rng = np.random.default_rng(zlib.crc32(f"{side}:{shift}".encode()))  # stable across processes
    difficulty = np.random.default_rng(0).beta(8, 2, 1000)  # shared examples
    runs = []
    for s in range(seeds):
        p = np.clip(difficulty + rng.normal(0, seed_sd) - shift, 0, 1)
        runs.append(make_run(folder / f"{side}{s}", (rng.random(1000) < p).tolist()))
    return runs


def test_replicates_hold_size_and_catch_a_real_regression(tmp_path: Path) -> None:
    rule = policy("accuracy.accuracy: -1pt significant")
    base = replicate_runs(tmp_path, "a", 3, 0.0, 0.01)
    same = replicate_runs(tmp_path, "b", 3, 0.0, 0.01)
    verdict = run_gate(base, same, rule)
    assert verdict.rules[0].status != "fail" and verdict.rules[0].test is not None
    assert verdict.rules[0].test.kind == "replicates" and "seed sd" in (verdict.rules[0].test.note or "")
    # A drop of 12 points against seeds that move accuracy by ~1-2.5 points: with 3 seeds per
    # side (about 3 degrees of freedom) the test detects about 4 seed sds.
    worse = replicate_runs(tmp_path, "c", 3, 0.12, 0.01)
    assert run_gate(base, worse, rule).rules[0].status == "fail"


def test_cli_takes_replicate_sets_and_plans(tmp_path: Path) -> None:
    base = replicate_runs(tmp_path, "a", 2, 0.0, 0.01)
    cand = replicate_runs(tmp_path, "b", 2, 0.0, 0.01)
    pol = tmp_path / "gate.yaml"
    pol.write_text("rules:\n  - accuracy.accuracy: -1pt significant\n")
    out = tmp_path / "v.json"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "gate", "--baseline", *map(str, base),
         "--candidate", *map(str, cand), "--policy", str(pol), "--json", str(out)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode in (ExitCode.OK, ExitCode.REGRESSION), proc.stderr
    verdict = json.loads(out.read_text())
    assert verdict["rules"][0]["test"]["kind"] == "replicates"
    assert verdict["baseline"] == ", ".join(map(str, base))
    planned = CliRunner().invoke(app(), ["gate", "--plan", "--policy", str(pol), "--json", str(out)])
    assert planned.exit_code == 0, planned.output
    assert json.loads(out.read_text())["plan"][0]["n_required"] > 1000


# ------------------------------------------------------------------ defect 8: one example set


def test_attack_success_change_is_measured_on_the_tested_examples(tmp_path: Path) -> None:
    base = {f"e{i}": i % 3 == 0 for i in range(25)}  # attacked 25 examples
    cand = {f"e{i}": i % 2 == 0 for i in range(2, 27)}  # attacked 25, 23 of them shared
    b, c = declared_run(tmp_path / "b", base), declared_run(tmp_path / "c", cand)
    (rule,) = run_gate(b, c, policy("robustness.pwws.attack_success_rate: +50pt")).rules
    shared = [k for k in base if k in cand]
    expected = np.mean([cand[k] for k in shared]) - np.mean([base[k] for k in shared])
    assert rule.change == pytest.approx(expected) and rule.test is not None
    assert rule.test.n == len(shared) and "23 ids both runs have" in (rule.test.note or "")


def test_sweep_summary_reports_each_replicate_sets_seed_sd(tmp_path: Path) -> None:
    from harness.config import parse_run_config
    from harness.sweep.execute import JobOutcome, replicate_sets
    from harness.sweep.spec import Job

    outcomes = []
    for seed, right in enumerate((80, 84, 90)):
        raw = {"name": "r", "seed": seed, "dataset": {"name": "rotten-tomatoes"},
               "model": {"artifact": "minilm-l6"}, "suites": [{"name": "accuracy"}]}
        config, params = parse_run_config(raw, source="test")
        job = Job(f"j{seed}", f"seed-{seed}", {}, (), config, tuple(params))
        run = make_run(tmp_path / f"s{seed}", [i < right for i in range(100)])
        outcomes.append(JobOutcome(job, run, status="ok"))
    (group,) = replicate_sets(outcomes)
    assert group["seeds"] == [0, 1, 2]
    acc = group["metrics"]["accuracy.accuracy"]
    assert acc["mean"] == pytest.approx(np.mean([0.8, 0.84, 0.9]))
    assert acc["seed_sd"] == pytest.approx(np.std([0.8, 0.84, 0.9], ddof=1))
