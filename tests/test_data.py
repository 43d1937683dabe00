"""Data loading: each bad input gives its message naming file and row; splits are grouped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.config import DatasetConfig
from harness.data import assign_splits, load_bundle, normalise_text
from harness.errors import DataError


def cfg(path: Path, **kw: object) -> DatasetConfig:
    return DatasetConfig(path=str(path), columns={"id": "id", "text": "text", "label": "label"}, **kw)  # type: ignore[arg-type]


def csv_file(tmp_path: Path, body: str, name: str = "d.csv") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "kwargs", "message"),
    [
        ("id,txt,label\n1,a,pos\n", {}, "d.csv: missing column 'text' (columns present: id, txt, label)"),
        ("id,text,label\n1,  ,pos\n", {}, "d.csv: row 2: column 'text' is empty or whitespace-only"),
        ("id,text,label\n1,a,pos\n2,b,\n", {}, "d.csv: row 3: column 'label' has no label"),
        ("id,text,label\n1,a,pos\n2,b,maybe\n", {"labels": ["neg", "pos"]}, "d.csv: row 3: label 'maybe' is not in the declared label set ['neg', 'pos']"),
        ("id,text,label\n1,a,pos\n1,b,neg\n", {}, "d.csv: row 3: duplicate id '1' (first seen at row 2)"),
        ("id,text,label\n", {}, "d.csv: the dataset has no rows"),
    ],
)
def test_bad_csv_rows(tmp_path: Path, body: str, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DataError) as info:
        load_bundle(cfg(csv_file(tmp_path, body), **kwargs), base_dir=tmp_path)
    assert message in info.value.message


def test_undecodable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"id,text,label\n1,caf\xe9,pos\n")
    with pytest.raises(DataError, match=r"d.csv: row 2: byte 19: not valid UTF-8"):
        load_bundle(cfg(path), base_dir=tmp_path)


def test_jsonl_and_parquet(tmp_path: Path) -> None:
    rows = [{"id": f"r{i}", "text": f"text {i}", "label": "pos" if i % 2 else "neg"} for i in range(40)]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bundle = load_bundle(cfg(jsonl), base_dir=tmp_path)
    assert sum(len(s) for s in bundle.splits.values()) == 40
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    bundle2 = load_bundle(cfg(tmp_path / "d.parquet"), base_dir=tmp_path)
    assert {k: v.digest() for k, v in bundle.splits.items()} == {k: v.digest() for k, v in bundle2.splits.items()}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "text": "a", "label": "pos"}\n{oops\n')
    with pytest.raises(DataError, match=r"bad\.jsonl: row 2: not valid JSON"):
        load_bundle(cfg(bad), base_dir=tmp_path)


def test_files_per_split_with_differing_label_sets(tmp_path: Path) -> None:
    a = csv_file(tmp_path, "id,text,label\n1,a,pos\n2,b,neg\n", "train.csv")
    b = csv_file(tmp_path, "id,text,label\n1,a,pos\n2,b,meh\n", "test.csv")
    config = DatasetConfig(files={"train": str(a), "test": str(b)}, columns={"id": "id"})  # type: ignore[arg-type]
    with pytest.raises(DataError, match="the label set differs between splits"):
        load_bundle(config, base_dir=tmp_path)


def test_splits_keep_groups_and_duplicate_texts_together() -> None:
    keys = [f"movie{i % 30}" for i in range(600)]
    texts = [f"review {i}" for i in range(600)]
    texts[5] = "Same  text"
    texts[6] = "same text"  # a normalised duplicate in another movie
    assigned = assign_splits(keys, texts, {"train": 0.8, "dev": 0.1, "test": 0.1}, seed=0)
    by_movie: dict[str, set[str]] = {}
    for key, split in zip(keys, assigned, strict=True):
        by_movie.setdefault(key, set()).add(split)
    assert all(len(s) == 1 for s in by_movie.values())
    assert assigned[5] == assigned[6]
    assert assign_splits(keys, texts, {"train": 0.8, "dev": 0.1, "test": 0.1}, seed=0) == assigned


def test_sample_is_deterministic_and_stable(tmp_path: Path) -> None:
    rows = "id,text,label\n" + "".join(f"{i},text {i},{'pos' if i % 2 else 'neg'}\n" for i in range(100))
    bundle = load_bundle(cfg(csv_file(tmp_path, rows), split_fractions={"test": 1.0}, eval_split="test"), base_dir=tmp_path)
    ds = bundle.splits["test"]
    assert ds.sample(10, 1).ids == ds.sample(10, 1).ids
    assert ds.sample(10, 1).ids != ds.sample(10, 2).ids
    assert len(ds.sample(1000, 0)) == len(ds)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(min_size=0, max_size=30), min_size=0, max_size=8))
def test_arbitrary_texts_load_or_fail_clearly(tmp_path: Path, texts: list[str]) -> None:
    """Control chars, zero-width, RTL, lone surrogates, empties: a Dataset or a DataError, nothing else."""
    path = tmp_path / "fuzz.jsonl"
    lines = [json.dumps({"id": str(i), "text": t, "label": "pos"}) for i, t in enumerate(texts)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    try:
        bundle = load_bundle(cfg(path, split_fractions={"test": 1.0}), base_dir=tmp_path)
    except DataError:
        return
    assert all(t.strip() for ds in bundle.splits.values() for t in ds.texts)


def test_normalise_text() -> None:
    assert normalise_text("  Ｈello\u00a0 WORLD ") == "hello world"


@pytest.mark.network
def test_rotten_tomatoes_real_artifact() -> None:
    bundle = load_bundle(DatasetConfig(name="rotten-tomatoes"))
    assert sum(len(s) for s in bundle.splits.values()) == 12808
    movies = {}
    for split, ds in bundle.splits.items():
        assert ds.label_names == ("rotten", "fresh")
        for text in ds.texts:
            movies.setdefault(normalise_text(text), set()).add(split)
    assert all(len(s) == 1 for s in movies.values())


def test_lone_surrogate_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "1", "text": "bad \\ud800 here", "label": "pos"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"s.jsonl: row 1: column 'text' holds a lone surrogate \(U\+D800"):
        load_bundle(cfg(path, split_fractions={"test": 1.0}), base_dir=tmp_path)
