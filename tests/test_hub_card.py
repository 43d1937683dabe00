"""harness export model-card: huggingface_hub reads the card's model-index back to the record's values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.leaderboard.synthetic import Spec, write_run
from harness.records import RECORD_FILE, load_record
from harness.reports.hub_card import md, model_index
from harness.store import write_manifest

HOSTILE = "<script>x</script> | *bold* [link](http://e.x)\n---\nkey: value"


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    folder = write_run(tmp_path / "run", Spec("card model", accuracy=0.83, seed=4))
    raw = json.loads((folder / RECORD_FILE).read_text())
    raw["model"]["name"] = "org/model " + HOSTILE
    accuracy = next(s for s in raw["suites"] if s["name"] == "accuracy")
    accuracy["metrics"].append({"name": "f1.pos", "value": 0.8, "higher_is_better": True})  # per class
    (folder / RECORD_FILE).write_text(json.dumps(raw, sort_keys=True, indent=2) + "\n")
    write_manifest(folder)
    return folder


def test_card_parses_back_to_the_same_values(run: Path, tmp_path: Path) -> None:
    from huggingface_hub import ModelCard, metadata_load
    from huggingface_hub.repocard_data import model_index_to_eval_results

    done = harness("export", "model-card", str(run))
    assert done.returncode == 0, done.stderr
    readme = run.with_name("run.model-card") / "README.md"
    assert readme.is_file() and f"model card: {readme}" in done.stdout
    assert harness("verify", str(run)).returncode == 0  # written outside the run folder
    record = load_record(run)
    meta = metadata_load(readme)
    assert meta is not None and meta["pipeline_tag"] == "text-classification"
    name, results = model_index_to_eval_results(meta["model-index"])
    assert name == record.model.name  # hostile text survives YAML as a plain value
    card = ModelCard.load(readme)
    assert card.data.eval_results is not None and len(card.data.eval_results) == len(results)
    expected = {}
    for suite in record.suites:
        for m in suite.metrics:
            expected[f"{suite.name}: {m.name}"] = m.value
    assert results
    for r in results:
        assert r.task_type == "text-classification" and r.dataset_type == record.dataset.name
        assert r.dataset_split == "test" and r.dataset_revision == record.dataset.splits[0].sha256
        assert r.metric_value == expected[r.metric_name], r.metric_name
        assert r.verified is False
    accuracy = next(r for r in results if r.metric_name == "accuracy: accuracy")
    assert accuracy.metric_type == "accuracy"
    f1 = [r for r in results if r.metric_type == "f1"]
    assert all(r.metric_args == {"average": "macro"} for r in f1)
    body = card.text
    assert "<script>" not in body and "&lt;script&gt;" in body and "\\|" in body


def test_metric_selection_and_escaping(run: Path, tmp_path: Path) -> None:
    record = load_record(run)
    headline = model_index(record)[0]["results"]
    every = model_index(record, every_metric=True)[0]["results"]
    n_head = sum(len(r["metrics"]) for r in headline)
    n_all = sum(len(r["metrics"]) for r in every)
    directed = sum(1 for s in record.suites for m in s.metrics if m.value is not None and m.higher_is_better is not None)
    assert n_head < n_all == directed
    names = {m["name"] for r in headline for m in r["metrics"]}
    assert "accuracy: accuracy" in names and "accuracy: f1.pos" not in names
    assert md("a|b <i>*x*</i>\nnext") == "a\\|b &lt;i&gt;\\*x\\*&lt;/i&gt; next"
    out = tmp_path / "custom" / "README.md"
    assert harness("export", "model-card", str(run), "-o", str(out), "--all-metrics").returncode == 0
    assert out.read_text(encoding="utf-8").startswith("---\n")
    missing = harness("export", "model-card", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "error:" in missing.stderr


def test_revision_is_the_hub_commit_when_the_dataset_came_from_the_hub(run: Path) -> None:
    record = load_record(run)
    assert model_index(record)[0]["results"][0]["dataset"]["revision"] == record.dataset.splits[0].sha256
    commit = "5503434ddd753f426f4b38109466949a1217c2bb"
    pinned = record.model_copy(update={"dataset": record.dataset.model_copy(update={"revision": commit})})
    assert {r["dataset"]["revision"] for r in model_index(pinned)[0]["results"]} == {commit}
