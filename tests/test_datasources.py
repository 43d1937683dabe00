"""Hugging Face data sources (save_to_disk folders, Arrow files, the Hub), label_map and
extra evaluation sets: rows like any other file, with the same messages naming file and label."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.config import DatasetConfig
from harness.data import load_bundle
from harness.datasources import (
    MSG_HUB_DATASET_OFFLINE,
    MSG_NOT_ARROW,
    MSG_UNMAPPED_LABEL,
)
from harness.errors import ArtifactError, ConfigError, DataError
from tests.conftest import write_csv
from tests.fixtures_text import make_rows

COLUMNS = {"id": "id", "text": "text", "label": "label"}


def hf_dataset(n: int, seed: int = 0) -> Any:
    """A ``datasets.Dataset`` with a ClassLabel label column (names negative/positive)."""
    from datasets import ClassLabel, Dataset, Features, Value

    rows = make_rows(n, seed)
    features = Features({"id": Value("string"), "text": Value("string"), "label": ClassLabel(names=["negative", "positive"]), "group": Value("string")})
    return Dataset.from_dict({
        "id": [r["id"] for r in rows], "text": [r["text"] for r in rows],
        "label": [0 if r["label"] == "neg" else 1 for r in rows], "group": [r["group"] for r in rows],
    }, features=features)  # fmt: skip


def test_save_to_disk_dataset_dict_keeps_its_splits_and_label_names(tmp_path: Path) -> None:
    from datasets import DatasetDict

    DatasetDict({"train": hf_dataset(30, 0), "test": hf_dataset(20, 1)}).save_to_disk(str(tmp_path / "dd"))
    bundle = load_bundle(DatasetConfig(path=str(tmp_path / "dd"), columns=COLUMNS | {"groups": ["group"]}))  # type: ignore[arg-type]
    assert sorted(bundle.splits) == ["test", "train"] and len(bundle.splits["test"]) == 20
    test = bundle.splits["test"]
    assert test.label_names == ("negative", "positive")  # ClassLabel ints read as their names
    assert [test.label_names[y] for y in test.labels[:2]] == ["positive", "negative"]
    assert test.ids[0] == "ex0000" and set(test.groups) == {"group"}


def test_single_dataset_folder_and_arrow_files(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.feather as feather

    hf_dataset(40).save_to_disk(str(tmp_path / "single"))
    split = {"split_fractions": {"train": 0.5, "test": 0.5}}
    folder = load_bundle(DatasetConfig(path=str(tmp_path / "single"), columns=COLUMNS, **split))  # type: ignore[arg-type]
    assert sum(len(s) for s in folder.splits.values()) == 40
    # The Arrow (IPC stream) file datasets writes, read directly: ClassLabel names from its schema.
    arrow = next((tmp_path / "single").glob("*.arrow"))
    from_arrow = load_bundle(DatasetConfig(path=str(arrow), columns=COLUMNS, **split))  # type: ignore[arg-type]
    assert {k: v.digest() for k, v in from_arrow.splits.items()} == {k: v.digest() for k, v in folder.splits.items()}
    # A plain Arrow IPC file (Feather v2) without datasets metadata: string labels as they are.
    rows = make_rows(10)
    feather.write_feather(pa.Table.from_pylist(rows), str(tmp_path / "plain.arrow"))
    plain = load_bundle(DatasetConfig(files={"test": str(tmp_path / "plain.arrow")}, columns=COLUMNS))  # type: ignore[arg-type]
    assert plain.splits["test"].label_names == ("neg", "pos") and len(plain.splits["test"]) == 10


def test_broken_hf_sources_are_named(tmp_path: Path) -> None:
    junk = tmp_path / "junk.arrow"
    junk.write_bytes(b"\x00\x01junk")
    with pytest.raises(DataError) as info:
        load_bundle(DatasetConfig(files={"test": str(junk)}, columns=COLUMNS))  # type: ignore[arg-type]
    assert info.value.message.startswith(MSG_NOT_ARROW.split("{error}")[0].format(path=junk))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: not a datasets save_to_disk folder"):
        load_bundle(DatasetConfig(path=str(tmp_path / "empty"), columns=COLUMNS))  # type: ignore[arg-type]


def test_label_map_renames_labels_and_names_an_unmapped_one(tmp_path: Path) -> None:
    rows = [{**r, "label": {"neg": "negative", "pos": "positive"}[r["label"]]} for r in make_rows(20)]
    path = write_csv(tmp_path / "d.csv", rows)
    mapping = {"negative": "rotten", "positive": "fresh"}
    cfg = {"files": {"test": str(path)}, "columns": COLUMNS, "labels": ["rotten", "fresh"], "label_map": mapping}
    test = load_bundle(DatasetConfig(**cfg)).splits["test"]  # type: ignore[arg-type]
    assert test.label_names == ("rotten", "fresh")
    assert [test.label_names[y] for y in test.labels] == [mapping[r["label"]] for r in rows]
    rows[3]["label"] = "mixed"
    write_csv(path, rows)
    with pytest.raises(DataError) as info:
        load_bundle(DatasetConfig(**cfg))  # type: ignore[arg-type]
    assert info.value.message == MSG_UNMAPPED_LABEL.format(
        where="dataset.label_map", label="mixed", source=f"test={path}", split="test", ident=rows[3]["id"],
        count=1, keys="'negative', 'positive'",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"hub": "a/b", "path": "x.csv"}, "exactly one of name, path, files or hub (got path, hub)"),
        ({"path": "x.csv", "revision": "main"}, "'config' and 'revision' belong to a hub dataset"),
        ({"path": "x.csv", "label_map": {}}, "'label_map' is empty"),
        ({"path": "x.csv", "labels": ["a"], "label_map": {"x": "b"}}, "label_map: 'b' is not in dataset.labels ['a']"),
        ({"path": "x.csv", "extra_eval": {"bad name": {"path": "y.csv"}}}, "extra_eval: name 'bad name' must be"),
        ({"path": "x.csv", "extra_eval": {"ood": {"path": "y.csv", "labelmap": {}}}}, "labelmap"),
    ],
)
def test_source_config_errors(raw: dict[str, Any], message: str) -> None:
    from harness.config import parse_run_config

    with pytest.raises(ConfigError) as info:
        parse_run_config({"name": "x", "dataset": raw, "model": {"path": "m"}, "suites": [{"name": "accuracy"}]}, source="run.yaml")
    assert message in info.value.message


def test_hub_dataset_is_refused_offline_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ArtifactError) as info:
        load_bundle(DatasetConfig(hub="cornell-movie-review-data/rotten_tomatoes"))
    assert info.value.message == MSG_HUB_DATASET_OFFLINE.format(
        where="dataset", repo="cornell-movie-review-data/rotten_tomatoes", variable="HF_HUB_OFFLINE"
    )


@pytest.mark.network
def test_hub_dataset_online_pins_the_commit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    cfg = DatasetConfig(hub="cornell-movie-review-data/rotten_tomatoes", columns={"id": None, "text": "text", "label": "label"})  # type: ignore[arg-type]
    bundle = load_bundle(cfg)
    assert bundle.revision is not None and len(bundle.revision) == 40
    assert bundle.source.endswith("@" + bundle.revision) and {"train", "test"} <= set(bundle.splits)
    assert bundle.label_names == ("neg", "pos")


def test_run_with_extra_eval_label_map_and_clean_subset(tmp_path: Path, tiny_model_dir: Path) -> None:
    """One CLI run: the main split (part of it copied from the train split), an out-of-domain
    set labelled negative/positive mapped onto the model's labels, the data suite's clean
    subset scored by the accuracy suite, gap intervals; the gate names a slice."""
    rows = make_rows(120, seed=2)
    train, test = rows[:60], rows[60:]
    test += [{**r, "id": f"copy-{r['id']}", "text": r["text"].lower().replace(".", " .")} for r in train[:20]]
    write_csv(tmp_path / "train.csv", train)
    write_csv(tmp_path / "test.csv", test)
    ood = [{**r, "label": {"neg": "negative", "pos": "positive"}[r["label"]]} for r in make_rows(30, seed=9)]
    write_csv(tmp_path / "ood.csv", ood)
    run = {
        "name": "views", "seed": 0, "threads": 1, "output_dir": str(tmp_path / "runs"),
        "dataset": {"files": {"train": str(tmp_path / "train.csv"), "test": str(tmp_path / "test.csv")},
                    "columns": {"id": "id", "groups": ["group"]}, "labels": ["neg", "pos"],
                    "extra_eval": {"ood": {"path": str(tmp_path / "ood.csv"), "label_map": {"negative": "neg", "positive": "pos"}}}},
        "model": {"path": str(tiny_model_dir), "max_length": 32, "batch_size": 16},
        "suites": [{"name": "accuracy", "params": {"n_bootstrap": 100}},
                   {"name": "data", "params": {"n_permutations": 49, "min_slice_size": 5, "n_clusters": 2, "num_perm": 32}}],
    }  # fmt: skip
    (tmp_path / "run.json").write_text(json.dumps(run))
    harness = [sys.executable, "-m", "harness"]
    done = subprocess.run([*harness, "run", str(tmp_path / "run.json"), "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "out" / "record.json").read_text())
    (extra,) = record["dataset"]["extra_eval"]
    assert (extra["name"], extra["n"], extra["split"]) == ("ood", 30, "all")
    assert (tmp_path / "out" / extra["predictions_file"]).is_file()
    acc = {m["name"]: m for m in record["suites"][0]["metrics"]}
    data = {m["name"]: m for m in record["suites"][1]["metrics"]}
    assert data["contamination.share"]["value"] == pytest.approx(20 / 80)  # the copies, found
    assert acc["subset.clean.accuracy"]["n"] == 60 and acc["eval.ood.accuracy"]["n"] == 30
    gap = acc["eval.ood.gap.accuracy"]
    assert gap["value"] == pytest.approx(acc["eval.ood.accuracy"]["value"] - acc["accuracy"]["value"])
    # For two Wilson intervals the MOVER gap is Newcombe's interval (statsmodels' reference).
    from statsmodels.stats.proportion import confint_proportions_2indep

    k1, n1 = round(acc["eval.ood.accuracy"]["value"] * 30), 30
    k2, n2 = round(acc["accuracy"]["value"] * 80), 80
    low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")
    assert (gap["ci_low"], gap["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    rows_out = [json.loads(line) for line in (tmp_path / "out" / "examples" / "data.jsonl").read_text().splitlines()]
    copies = [r for r in rows_out if r["id"].startswith("copy-")]
    assert all(r["match"]["id"] == r["id"][5:] and r["match"]["split"] == "train" for r in copies)
    # A gate rule can name a slice.
    policy = tmp_path / "gate.yaml"
    policy.write_text("rules:\n  - data.slice.label-neg.accuracy >= 1.01\n")
    gated = subprocess.run([*harness, "gate", "--baseline", str(tmp_path / "out"), "--candidate", str(tmp_path / "out"), "--policy", str(policy)], capture_output=True, text=True, timeout=120)
    assert gated.returncode == 1 and "slice.label-neg.accuracy" in gated.stdout, gated.stdout + gated.stderr
    # The report shows the data findings: the contaminated examples with their training ids.
    report = tmp_path / "report.html"
    done = subprocess.run([*harness, "report", str(tmp_path / "out"), "-o", str(report)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    html = report.read_text()
    assert "Contaminated examples" in html and "Contaminated share: 0.25" in html and "subset.clean.accuracy" in html
    assert all(f">{r['id'][5:]}<" in html for r in copies[:5])
