"""harness review: export a blind sheet of successful attacks, import human judgements (record,
manifest and signature updated), figures against scikit-learn, and tampering caught by verify."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sklearn.metrics import cohen_kappa_score

from harness.audit import review
from harness.audit.verify import SIGNATURE_FILE, verify_run
from harness.errors import ConfigError
from harness.records import SuiteRecord, load_record
from harness.store import example_line
from tests.test_gate import make_run

HARNESS = [sys.executable, "-m", "harness"]


def attack_rows() -> list[dict[str, Any]]:
    """Two recipes: successes with and without the automatic validity verdict, failures, a skip."""
    rows = []
    for recipe in ("deepwordbug", "pwws"):
        for i in range(8):
            result = "succeeded" if i < 5 else ("failed" if i < 7 else "skipped")
            valid = i % 2 == 0
            rows.append({
                "id": f"{recipe}:ex{i}", "recipe": recipe, "example_id": f"ex{i}", "label": i % 2,
                "label_name": ["neg", "pos"][i % 2], "result": result,
                "original_text": f"a fine film number {i}",
                "perturbed_text": f"a fiine film number {i}" if result == "succeeded" else None,
                "validity": {"valid": valid, "rejected_by": [] if valid else ["similarity"], "checks": {}}
                if result == "succeeded" else None,
                "valid_result": ("succeeded" if valid else "rejected") if result == "succeeded" else result,
            })  # fmt: skip
    return rows


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    rows = attack_rows()
    suite = SuiteRecord(
        name="robustness", version="1.1", params={}, status="ok", wall_time_s=1.0,
        examples_file="examples/robustness.jsonl", n_examples=len(rows),
    )  # fmt: skip
    text = "".join(example_line(r) + "\n" for r in rows)
    return make_run(
        tmp_path / "run", [True] * 10, extra_suites=[suite],
        extra_files={"examples/robustness.jsonl": text},
    )  # fmt: skip


def fill(sheet: Path, verdicts: dict[str, str], reviewer: str = "") -> Path:
    with sheet.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for r in rows:
        r["human_valid"] = verdicts.get(r["id"], "")
        r["reviewer"] = reviewer
    out = sheet.with_name("filled-" + sheet.name)
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def human(i: int) -> str:
    return "valid" if i in (0, 1, 2) else "invalid"


def test_export_import_round_trip_and_figures(run: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    out = subprocess.run(
        [*HARNESS, "review", "export", str(run), "-o", str(sheet)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    with sheet.open(encoding="utf-8") as handle:
        exported = list(csv.DictReader(handle))
    assert [r["id"] for r in exported] == [
        f"{rc}:ex{i}" for rc in ("deepwordbug", "pwws") for i in range(5)
    ]
    assert "valid" not in exported[0] and "validity" not in exported[0]  # blind to the checks
    verdicts = {f"{rc}:ex{i}": human(i) for rc in ("deepwordbug", "pwws") for i in range(5)}
    filled = fill(sheet, verdicts, reviewer="Ada Lovelace")
    done = subprocess.run(
        [*HARNESS, "review", "import", str(run), str(filled)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "imported 10 judgement(s) by Ada Lovelace" in done.stdout
    assert verify_run(run).ok, verify_run(run).problems
    suite = next(s for s in load_record(run).suites if s.name == "robustness")
    assert (run / "reviews" / "Ada-Lovelace.jsonl").is_file()
    assert suite.details["human_review"]["reviewers"] == ["Ada Lovelace"]
    # deepwordbug: 5 successes of 7 attacked (the skip excluded), 3 judged valid by the human.
    share = suite.metric("deepwordbug.human_valid_share")
    rate = suite.metric("deepwordbug.human_valid_attack_success_rate")
    assert share is not None and share.value == pytest.approx(3 / 5) and share.ci_method == "wilson"
    assert rate is not None and rate.value == pytest.approx(3 / 7) and rate.n == 7
    machine = [i % 2 == 0 for i in range(5)]
    people = [human(i) == "valid" for i in range(5)]
    kappa = suite.metric("deepwordbug.checks_human_kappa")
    agreement = suite.metric("deepwordbug.checks_human_agreement")
    assert kappa is not None and kappa.value == pytest.approx(cohen_kappa_score(machine, people))
    assert agreement is not None and agreement.value == pytest.approx(
        sum(m == h for m, h in zip(machine, people, strict=True)) / 5
    )


def test_tampering_with_an_imported_review_fails_verify(run: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "s.csv"
    review.export_sheet(run, sheet)
    review.import_sheet(
        run, fill(sheet, {"pwws:ex0": "valid", "pwws:ex1": "invalid"}), reviewer="r1", key=None
    )
    path = run / "reviews" / "r1.jsonl"
    original = path.read_text(encoding="utf-8")
    path.write_text(original.replace('"valid": false', '"valid": true'), encoding="utf-8")
    report = verify_run(run)
    assert not report.ok and report.exit_code == 1
    assert any("reviews/r1.jsonl" in p and "sha256" in p for p in report.problems)
    assert any("human_review does not match" in p for p in report.problems)
    cli = subprocess.run([*HARNESS, "verify", str(run)], capture_output=True, text=True)
    assert cli.returncode == 1


def test_partial_review_has_no_interval_and_majority_of_reviewers(
    run: Path, tmp_path: Path
) -> None:
    sheet = tmp_path / "s.csv"
    review.export_sheet(run, sheet)
    review.import_sheet(
        run, fill(sheet, {"pwws:ex0": "valid", "pwws:ex1": "valid"}), reviewer="a", key=None
    )
    review.import_sheet(
        run, fill(sheet, {"pwws:ex0": "invalid", "pwws:ex1": "valid"}), reviewer="b", key=None
    )
    suite = next(s for s in load_record(run).suites if s.name == "robustness")
    share = suite.metric("pwws.human_valid_share")
    assert share is not None and share.value == pytest.approx(1 / 2)  # ex0 tied -> invalid
    rate = suite.metric("pwws.human_valid_attack_success_rate")
    assert rate is not None and rate.ci_low is None and rate.value == pytest.approx(5 / 7 * 1 / 2)
    assert suite.details["human_review"]["reviewers"] == ["a", "b"]
    assert verify_run(run).ok


def test_signed_run_needs_the_key_and_is_signed_again(run: Path, tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    pub = tmp_path / "k.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True)
    subprocess.run([*HARNESS, "sign", str(run), "--key", str(key)], check=True, capture_output=True)
    sheet = tmp_path / "s.csv"
    review.export_sheet(run, sheet)
    filled = fill(sheet, {"pwws:ex0": "valid"}, reviewer="r")
    before = (run / "record.json").read_bytes()
    with pytest.raises(ConfigError, match="the run is signed"):
        review.import_sheet(run, filled, reviewer=None, key=None)
    assert (run / "record.json").read_bytes() == before and not (run / "reviews").exists()
    review.import_sheet(run, filled, reviewer=None, key=key)
    assert (run / SIGNATURE_FILE).is_file()
    assert verify_run(run, public_key=pub).ok


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"pwws:ex6": "valid"}, "row 1: .*not a successful attack"),
        ({"pwws:ex0": "maybe"}, "human_valid 'maybe' is not valid/invalid"),
        ({}, "no row has a judgement"),
    ],
)
def test_bad_sheets_name_the_row_and_write_nothing(
    run: Path, tmp_path: Path, edit: dict[str, str], message: str
) -> None:
    sheet = tmp_path / "s.jsonl"
    review.export_sheet(run, sheet)
    rows = [json.loads(line) for line in sheet.read_text().splitlines()]
    if "pwws:ex6" in edit:
        rows.insert(0, {**rows[0], "id": "pwws:ex6"})
    for r in rows:
        r["human_valid"] = edit.get(r["id"], "")
    sheet.write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = (run / "manifest.json").read_bytes()
    with pytest.raises(ConfigError, match=message):
        review.import_sheet(run, sheet, reviewer="r", key=None)
    assert (run / "manifest.json").read_bytes() == manifest


def test_missing_reviewer_and_run_without_robustness(run: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "s.csv"
    review.export_sheet(run, sheet)
    with pytest.raises(ConfigError, match="no reviewer name"):
        review.import_sheet(run, fill(sheet, {"pwws:ex0": "yes"}), reviewer=None, key=None)
    plain = make_run(tmp_path / "plain", [True, False])
    with pytest.raises(ConfigError, match="no robustness suite"):
        review.export_sheet(plain, tmp_path / "x.csv")


def test_cohen_kappa_matches_scikit_learn_and_edges() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    for n in (1, 3, 10, 50):
        a = (rng.random(n) < 0.6).tolist()
        b = (rng.random(n) < 0.5).tolist()
        ours = review.cohen_kappa(a, b)
        if len(set(a)) == 1 and len(set(b)) == 1 and a[0] == b[0]:
            assert ours is None  # chance agreement 1: undefined (scikit-learn gives nan)
        else:
            assert ours == pytest.approx(cohen_kappa_score(a, b))
    assert review.cohen_kappa([], []) is None
