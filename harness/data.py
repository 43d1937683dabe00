"""Datasets: ids, texts, labels with a named label set, optional group columns.

Loaders read catalog datasets and local CSV / JSONL / Parquet files with configurable column
names, and refuse bad rows with a message naming the file and row. Splits are deterministic:
a seeded hash of the group key (e.g. the movie) decides the split, so no group, and no
normalised duplicate text, lands in two splits.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import (
    MSG_DUPLICATE_ID,
    MSG_EMPTY_DATASET,
    MSG_EMPTY_TEXT,
    MSG_MISSING_COLUMN,
    MSG_MISSING_LABEL,
    MSG_UNDECODABLE,
    MSG_UNKNOWN_LABEL,
    DataError,
)
from harness.store import iter_jsonl


@dataclass(frozen=True)
class Dataset:
    """One split of a labelled text dataset. Labels are indices into ``label_names``."""

    name: str
    split: str
    ids: tuple[str, ...]
    texts: tuple[str, ...]
    labels: tuple[int, ...]
    label_names: tuple[str, ...]
    groups: Mapping[str, tuple[str | None, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(self.texts) != n or len(self.labels) != n:
            raise ValueError("ids, texts and labels must have the same length")
        for column, values in self.groups.items():
            if len(values) != n:
                raise ValueError(f"group column {column!r} has {len(values)} values for {n} rows")

    def __len__(self) -> int:
        return len(self.ids)

    def digest(self) -> str:
        """sha256 over ids, texts, labels (by name) and group values, in order."""
        h = hashlib.sha256()
        h.update(json.dumps(list(self.label_names)).encode())
        for i in range(len(self)):
            row: list[str | None] = [self.ids[i], self.texts[i], self.label_names[self.labels[i]]]
            row += [self.groups[c][i] for c in sorted(self.groups)]
            h.update(json.dumps(row, ensure_ascii=False).encode())
            h.update(b"\n")
        return h.hexdigest()

    def subset(self, indices: Sequence[int]) -> Dataset:
        return Dataset(
            name=self.name,
            split=self.split,
            ids=tuple(self.ids[i] for i in indices),
            texts=tuple(self.texts[i] for i in indices),
            labels=tuple(self.labels[i] for i in indices),
            label_names=self.label_names,
            groups={c: tuple(v[i] for i in indices) for c, v in self.groups.items()},
        )

    def sample(self, n: int | None, seed: int) -> Dataset:
        """A deterministic sample of ``n`` examples (all when n is None or >= len), in id-hash order.

        Ordering by a seeded hash of the id (rather than a RNG draw over positions) keeps the
        sample of a grown dataset stable for the ids it already had.
        """
        if n is None or n >= len(self):
            return self
        order = sorted(range(len(self)), key=lambda i: _seeded_hash(self.ids[i], seed))
        return self.subset(sorted(order[:n]))


@dataclass(frozen=True)
class DatasetBundle:
    """All splits of a dataset, with where they came from."""

    name: str
    source: str
    splits: Mapping[str, Dataset]
    resources: tuple[dict[str, Any], ...] = ()
    revision: str | None = None  # the commit a Hub dataset was loaded at

    def get(self, split: str, *, key: str = "dataset.eval_split") -> Dataset:
        try:
            return self.splits[split]
        except KeyError:
            raise DataError(
                f"{key}: dataset {self.name!r} has no split {split!r} (splits: {', '.join(self.splits)})"
            ) from None

    @property
    def label_names(self) -> tuple[str, ...]:
        return next(iter(self.splits.values())).label_names


def _seeded_hash(key: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\0{key}".encode()).digest()[:8], "big")


def normalise_text(text: str) -> str:
    """The key used to find duplicate texts: NFKC, casefolded, whitespace collapsed."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().casefold()


def assign_splits(
    keys: Sequence[str],
    texts: Sequence[str],
    fractions: Mapping[str, float],
    seed: int,
) -> list[str]:
    """Assign each row to a split so that rows sharing a group key or a normalised text share a split.

    Groups linked by a common text are merged (union-find), then each merged group goes to the
    split whose cumulative fraction its seeded hash falls into.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    text_owner: dict[str, str] = {}
    for key, text in zip(keys, texts, strict=True):
        g = f"g:{key}"
        find(g)
        norm = normalise_text(text)
        if norm in text_owner:
            union(text_owner[norm], g)
        else:
            text_owner[norm] = g
    total = sum(fractions.values())
    bounds: list[tuple[float, str]] = []
    acc = 0.0
    # Sorted: the order of a mapping is not part of its identity (records store sorted keys).
    for name, frac in sorted(fractions.items()):
        acc += frac / total
        bounds.append((acc, name))
    out = []
    for key in keys:
        u = _seeded_hash(find(f"g:{key}"), seed) / 2**64
        out.append(next((name for bound, name in bounds if u < bound), bounds[-1][1]))
    return out


# ---------------------------------------------------------------- local files

FORMATS = ("csv", "jsonl", "parquet", "arrow", "disk")


def detect_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    for fmt, exts in (("csv", {".csv", ".tsv"}), ("jsonl", {".jsonl", ".ndjson"}), ("parquet", {".parquet"}), ("arrow", {".arrow"})):
        if exts & set(suffixes):
            return fmt
    raise DataError(f"{path}: cannot tell the format from the file name; set dataset.format to one of {', '.join(FORMATS)}")


def read_table(path: Path, fmt: str) -> tuple[list[str], list[dict[str, Any]], list[int]]:
    """Read a file into (columns, rows, row numbers as a person counts them in the file).

    Every value is a str or None. Refuses undecodable bytes with the row and byte offset.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
        columns = list(table.column_names)
        rows = [{k: (None if v is None else str(v)) for k, v in r.items()} for r in table.to_pylist()]
        return columns, rows, list(range(1, len(rows) + 1))
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            MSG_UNDECODABLE.format(path=path, row=raw.count(b"\n", 0, exc.start) + 1, offset=exc.start, reason=exc.reason)
        ) from None
    if fmt == "csv":
        import csv
        import io

        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        columns = list(reader.fieldnames or [])
        rows = []
        numbers = []
        for r in reader:
            rows.append({k: v for k, v in r.items() if k is not None})
            numbers.append(reader.line_num)  # physical line where the record ends (header is line 1)
        return columns, rows, numbers
    if fmt == "jsonl":
        columns_seen: dict[str, None] = {}
        rows = []
        numbers = []
        def bad_row(lineno: int, problem: str) -> DataError:
            return DataError(f"{path}: row {lineno}: not valid JSON ({problem})")

        for lineno, obj in iter_jsonl(path, text=text, on_bad_line=bad_row):
            if not isinstance(obj, dict):
                raise DataError(f"{path}: row {lineno}: expected a JSON object")
            for k in obj:
                columns_seen.setdefault(k, None)
            rows.append({k: (None if v is None else str(v)) for k, v in obj.items()})
            numbers.append(lineno)
        return list(columns_seen), rows, numbers
    raise DataError(f"{path}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def _row_text(row: Mapping[str, Any], column: str, path: Path | str, rowno: int) -> str:
    text = row.get(column)
    if text is None or not str(text).strip():
        raise DataError(MSG_EMPTY_TEXT.format(path=path, row=rowno, column=column))
    try:
        str(text).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DataError(
            f"{path}: row {rowno}: column {column!r} holds a lone surrogate "
            f"(U+{ord(str(text)[exc.start]):04X} at character {exc.start}), which is not text"
        ) from None
    return str(text)


def _row_label(
    row: Mapping[str, Any], column: str, declared: list[str] | None, path: Path | str, rowno: int
) -> str:
    label = row.get(column)
    if label is None or not str(label).strip():
        raise DataError(MSG_MISSING_LABEL.format(path=path, row=rowno, column=column))
    label = str(label).strip()
    if declared is not None and label not in declared:
        raise DataError(MSG_UNKNOWN_LABEL.format(path=path, row=rowno, label=label, labels=declared))
    return label


def build_dataset(
    *,
    path: Path | str,
    name: str,
    split: str,
    columns: list[str],
    rows: list[dict[str, Any]],
    id_column: str | None,
    text_column: str,
    label_column: str,
    group_columns: Sequence[str] = (),
    label_names: Sequence[str] | None = None,
    row_numbers: Sequence[int] | None = None,
) -> Dataset:
    """Validate rows and build a Dataset. ``row_numbers`` are the rows' numbers in the file
    (default: a header line then one row per line)."""
    for column in [text_column, label_column, *group_columns, *([id_column] if id_column else [])]:
        if column not in columns:
            raise DataError(MSG_MISSING_COLUMN.format(path=path, column=column, present=", ".join(columns)))
    if not rows:
        raise DataError(MSG_EMPTY_DATASET.format(path=path))
    declared = list(label_names) if label_names else None
    seen_labels: list[str] = []
    ids: list[str] = []
    texts: list[str] = []
    raw_labels: list[str] = []
    first_row: dict[str, int] = {}
    for i, row in enumerate(rows):
        rowno = row_numbers[i] if row_numbers is not None else i + 2
        text = _row_text(row, text_column, path, rowno)
        label = _row_label(row, label_column, declared, path, rowno)
        ident = str(row[id_column]).strip() if id_column else f"{split}-{i}"
        if ident in first_row:
            raise DataError(MSG_DUPLICATE_ID.format(path=path, row=rowno, id=ident, first=first_row[ident]))
        first_row[ident] = rowno
        if label not in seen_labels:
            seen_labels.append(label)
        ids.append(ident)
        texts.append(text)
        raw_labels.append(label)
    names = tuple(declared) if declared is not None else tuple(sorted(seen_labels))
    index = {n: k for k, n in enumerate(names)}
    groups = {
        c: tuple(
            (None if r.get(c) is None or not str(r.get(c)).strip() else str(r.get(c))) for r in rows
        )
        for c in group_columns
    }
    return Dataset(
        name=name,
        split=split,
        ids=tuple(ids),
        texts=tuple(texts),
        labels=tuple(index[lab] for lab in raw_labels),
        label_names=names,
        groups=groups,
    )


def load_bundle(config: Any, *, base_dir: Path | None = None) -> DatasetBundle:
    """Load all splits named by a ``DatasetConfig`` (a catalog dataset, local files, a
    save_to_disk folder or a Hub dataset: ``harness.datasources``), label_map applied."""
    from harness.datasources import load_source

    bundle = load_source(config, base_dir or Path.cwd())
    _check_label_sets(bundle)
    if config.eval_split not in bundle.splits:
        raise DataError(
            f"dataset.eval_split: no split {config.eval_split!r} (splits: {', '.join(bundle.splits)})"
        )
    return bundle


def _check_label_sets(bundle: DatasetBundle) -> None:
    sets = {split: ds.label_names for split, ds in bundle.splits.items()}
    if len(set(sets.values())) > 1:
        shown = "; ".join(f"{k}: {list(v)}" for k, v in sets.items())
        raise DataError(f"dataset: the label set differs between splits ({shown}); declare dataset.labels")
