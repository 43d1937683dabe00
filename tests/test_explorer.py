"""The example explorer's data: every example joined with what the suites recorded about it, in a
JSON block no text can break out of."""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.reports import build_report
from harness.reports.explorer import DATA_ID, data_json, explorer_rows
from harness.reports.view import load_view
from tests.explorer_checks import assert_only_explorer_scripts
from tests.explorer_fixture import HOSTILE_TEXTS, make_big_run
from tests.test_report import HOSTILE, make_run_dir


def test_rows_join_every_suite_on_the_example_id(tmp_path: Path) -> None:
    run, expected = make_big_run(tmp_path, n=1200)
    rows = {r["id"]: r for r in explorer_rows(load_view(run))}
    assert len(rows) == expected.n
    assert sum(1 for r in rows.values() if r["ok"] is False) == expected.wrong
    assert sum(1 for r in rows.values() for a in r["attacks"] if a["result"] == "succeeded") == expected.succeeded
    assert sum(1 for r in rows.values() if r["flips"]) == expected.flipped
    assert sum(1 for r in rows.values() if r["heat"]) == expected.explained
    assert sum(1 for r in rows.values() if "sex=F" in r["groups"]) == expected.sex_f
    failed = rows["ex00003"]
    assert failed["pred"] is None and failed["ok"] is None and failed["err"].startswith("model raised")
    assert all(r["text"] for r in rows.values())
    ex0 = rows["ex00000"]  # explained: the heat map has one score per word
    assert len(ex0["heat"]["words"]) == len(ex0["heat"]["methods"]["ig"])
    assert ex0["conf"] == max(ex0["probs"])


def test_data_block_cannot_be_closed_by_a_text(tmp_path: Path) -> None:
    run, expected = make_big_run(tmp_path, n=3100)
    block = data_json(explorer_rows(load_view(run)))
    assert "<" not in block and ">" not in block and "&" not in block
    assert "\u2028" not in block and "\u2029" not in block
    texts = {r["id"]: r["text"] for r in json.loads(block)["rows"]}
    assert [texts[i] for i in expected.hostile_ids] == list(HOSTILE_TEXTS)  # round-trips exactly
    document = build_report(run)
    assert_only_explorer_scripts(document)
    data = re.search(rf'<script type="application/json" id="{DATA_ID}">(.*?)</script>', document, re.S)
    assert data is not None and json.loads(data.group(1))["rows"][0]["id"] == "ex00000"


def test_report_of_a_small_run_lists_each_example(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path, hostile=HOSTILE)
    rows = explorer_rows(load_view(run))
    assert [r["id"] for r in rows] == [f"ex{i}" for i in range(12)]
    by_id = {r["id"]: r for r in rows}
    assert by_id["ex1"]["attacks"] == [{"recipe": "pwws", "result": "succeeded", "text": "a big film " + HOSTILE}]
    assert by_id["ex4"]["heat"]["methods"].keys() == {"integrated_gradients", "occlusion"}
    assert by_id["ex4"]["text"] == "a boring" + HOSTILE + " film"
