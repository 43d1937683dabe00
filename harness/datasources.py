"""Every data source, resolved here: catalog datasets, local files (CSV, JSONL, Parquet, Arrow),
``datasets`` ``save_to_disk`` folders and Hugging Face Hub datasets, plus the dataset
``label_map`` and the run's extra evaluation sets.

Hugging Face tables (a Hub download, a ``load_from_disk`` folder or an Arrow file) become rows
like any other file, so they go through the same validation (``harness.data.build_dataset``) and
fail with the same messages naming the file, row and column; ``ClassLabel`` columns are read as
their names. The Hub follows the one offline rule (``harness.hub``): offline it is refused at once
with a message, never attempted; online the revision is pinned to a commit first, and that
commit goes into the record with every split's digest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.data import (
    Dataset,
    DatasetBundle,
    assign_splits,
    build_dataset,
    detect_format,
    read_table,
)
from harness.errors import ArtifactError, DataError
from harness.hub import HUB_TIMEOUT_S, offline_variable

MSG_HUB_DATASET_OFFLINE = (
    "{where}.hub: {repo!r} needs the Hugging Face Hub, but {variable} is set; use {where}.path "
    "(a CSV/JSONL/Parquet/Arrow file or a save_to_disk folder) or {where}.name (a catalog dataset)"
)
MSG_HUB_DATASET_FAILED = "{where}.hub: cannot load {repo!r}{config} ({error})"
MSG_NOT_HF_FOLDER = (
    "{path}: not a datasets save_to_disk folder (no dataset_dict.json or dataset_info.json: {error})"
)
MSG_NOT_ARROW = "{path}: not a readable Arrow file ({error})"
MSG_UNMAPPED_LABEL = (
    "{where}: label {label!r} of {source} (split {split!r}, first at id {ident!r}, {count} "
    "row(s)) is not a key of the label_map (keys: {keys})"
)
MSG_EVAL_SET_SPLIT = "dataset.extra_eval.{name}.split: the source has no split {split!r} (splits: {splits})"
MSG_EVAL_SET_LABELS = (
    "dataset.extra_eval.{name}: label {label!r} is not in the main dataset's label set {labels}; "
    "map it with dataset.extra_eval.{name}.label_map"
)


def _resolve(path: str, base_dir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir / p


def source_format(path: Path, configured: str) -> str:
    if configured != "auto":
        return configured
    return "disk" if path.is_dir() else detect_format(path)


# ------------------------------------------------------------------ Hugging Face tables


def _columns_to_rows(columns: Mapping[str, Sequence[Any]], features: Any) -> tuple[list[str], list[dict[str, Any]], list[int]]:
    """Columnar HF data as rows of str/None values, ``ClassLabel`` ints as their names."""
    from datasets import ClassLabel

    names = list(columns)
    converted: dict[str, list[str | None]] = {}
    for name in names:
        feature = features.get(name) if features is not None else None
        values = columns[name]
        if isinstance(feature, ClassLabel):
            labels = feature.names
            converted[name] = [labels[v] if isinstance(v, int) and 0 <= v < len(labels) else None for v in values]
        else:
            converted[name] = [None if v is None else str(v) for v in values]
    n = len(next(iter(converted.values()))) if converted else 0
    rows = [{name: converted[name][i] for name in names} for i in range(n)]
    return names, rows, list(range(1, n + 1))


def hf_rows(ds: Any) -> tuple[list[str], list[dict[str, Any]], list[int]]:
    """A ``datasets.Dataset`` as (columns, rows, row numbers counted from 1)."""
    return _columns_to_rows(ds.to_dict(), ds.features)


def read_arrow(path: Path) -> tuple[list[str], list[dict[str, Any]], list[int]]:
    """An Arrow file: the IPC stream format ``datasets`` writes, or the IPC file (Feather v2)
    format; ``ClassLabel`` names come from the schema's ``huggingface`` metadata when present."""
    import pyarrow as pa
    from datasets import Features

    if not path.is_file():
        raise DataError(f"{path}: file not found")
    table = None
    errors = []
    for opener in (pa.ipc.open_stream, pa.ipc.open_file):
        try:
            with pa.memory_map(str(path)) as source:
                table = opener(source).read_all()
            break
        except (pa.ArrowInvalid, OSError) as exc:
            errors.append(str(exc))
    if table is None:
        raise DataError(MSG_NOT_ARROW.format(path=path, error=errors[-1]))
    try:
        features = Features.from_arrow_schema(table.schema)
    except Exception:  # foreign metadata: read the plain columns
        features = None
    return _columns_to_rows(table.to_pydict(), features)


def load_disk(path: Path) -> Any:
    """``datasets.load_from_disk``: a ``Dataset`` or a ``DatasetDict``."""
    from datasets import load_from_disk

    if not path.is_dir():
        raise DataError(f"{path}: folder not found")
    try:
        return load_from_disk(str(path))
    except Exception as exc:  # datasets raises FileNotFoundError, ValueError, KeyError…
        raise DataError(MSG_NOT_HF_FOLDER.format(path=path, error=f"{type(exc).__name__}: {exc}")) from None


def read_source_table(path: Path, fmt: str) -> tuple[list[str], list[dict[str, Any]], list[int]]:
    """One table from a file or a single-split folder (every format, HF ones included)."""
    if fmt == "arrow":
        return read_arrow(path)
    if fmt == "disk":
        loaded = load_disk(path)
        if hasattr(loaded, "features"):
            return hf_rows(loaded)
        raise DataError(
            f"{path}: a save_to_disk folder of several splits ({', '.join(loaded)}); name it in "
            "dataset.path (its splits are used as they are), not in dataset.files"
        )
    return read_table(path, fmt)


def hub_splits(config: Any, *, where: str) -> tuple[Mapping[str, Any], str]:
    """Every split of a Hub dataset at a pinned commit, and that commit. Refused offline."""
    repo = config.hub
    variable = offline_variable()
    if variable is not None:
        raise ArtifactError(MSG_HUB_DATASET_OFFLINE.format(where=where, repo=repo, variable=variable))
    shown = f" (config {config.config!r})" if config.config else ""
    try:
        from datasets import load_dataset
        from huggingface_hub import HfApi

        commit = HfApi().dataset_info(repo, revision=config.revision, timeout=HUB_TIMEOUT_S).sha
        loaded = load_dataset(repo, name=config.config, revision=commit)
    except Exception as exc:  # the hub clients raise many types; all mean "not available"
        error = f"{type(exc).__name__}: {exc}"[:500]
        raise ArtifactError(MSG_HUB_DATASET_FAILED.format(where=where, repo=repo, config=shown, error=error)) from None
    return dict(loaded), str(commit)


# ------------------------------------------------------------------ bundles


def _common(config: Any, columns: Any) -> dict[str, Any]:
    """build_dataset's column arguments; with a label_map the raw values are checked after mapping."""
    return {
        "id_column": columns.id,
        "text_column": columns.text,
        "label_column": columns.label,
        "group_columns": list(columns.groups),
        "label_names": None if config.label_map else getattr(config, "labels", None),
    }


def _split_table(config: Any, path: Path, table: tuple[list[str], list[dict[str, Any]], list[int]]) -> dict[str, Dataset]:
    """One table split by ``split_fractions`` (grouped by ``split_by``)."""
    from harness.errors import MSG_MISSING_COLUMN

    columns, rows, numbers = table
    whole = build_dataset(path=path, name=path.stem, split="all", columns=columns, rows=rows, row_numbers=numbers, **_common(config, config.columns))
    if config.split_by is not None and config.split_by not in columns:
        raise DataError(MSG_MISSING_COLUMN.format(path=path, column=config.split_by, present=", ".join(columns)))
    keys = [str(r.get(config.split_by)) for r in rows] if config.split_by else list(whole.ids)
    assigned = assign_splits(keys, whole.texts, dict(config.split_fractions), config.split_seed)
    splits: dict[str, Dataset] = {}
    for split in config.split_fractions:
        idx = [i for i, s in enumerate(assigned) if s == split]
        if idx:
            part = whole.subset(idx)
            splits[split] = Dataset(
                name=part.name, split=split, ids=part.ids, texts=part.texts, labels=part.labels,
                label_names=part.label_names, groups=part.groups,
            )  # fmt: skip
    return splits


def _hf_bundle(config: Any, columns: Any, hf: Mapping[str, Any], *, where: Path | str, name: str, source: str, revision: str | None) -> DatasetBundle:
    splits = {}
    for split, ds in hf.items():
        cols, rows, numbers = hf_rows(ds)
        splits[split] = build_dataset(
            path=f"{where} [{split}]", name=name, split=split, columns=cols, rows=rows, row_numbers=numbers, **_common(config, columns)
        )
    return DatasetBundle(name=name, source=source, splits=splits, revision=revision)


def load_source(config: Any, base_dir: Path, *, where: str = "dataset") -> DatasetBundle:
    """The splits a ``DatasetConfig`` (or an ``EvalSetConfig``) names, label_map applied."""
    from harness import registry

    columns = getattr(config, "columns", None)
    if config.name is not None:
        bundle: DatasetBundle = registry.datasets.get(config.name)(config)
    elif config.hub is not None:
        hf, commit = hub_splits(config, where=where)
        shown = f"{config.hub}" + (f" ({config.config})" if config.config else "")
        bundle = _hf_bundle(config, columns, hf, where=f"hub:{config.hub}", name=config.hub.split("/")[-1], source=f"hub:{shown}@{commit}", revision=commit)
    elif config.files is not None:
        splits: dict[str, Dataset] = {}
        for split, file in config.files.items():
            path = _resolve(file, base_dir)
            cols, rows, numbers = read_source_table(path, source_format(path, config.format))
            splits[split] = build_dataset(path=path, name=path.stem, split=split, columns=cols, rows=rows, row_numbers=numbers, **_common(config, columns))
        source = ", ".join(f"{k}={v}" for k, v in config.files.items())
        bundle = DatasetBundle(name=Path(next(iter(config.files.values()))).stem, source=source, splits=splits)
    else:
        path = _resolve(config.path, base_dir)
        fmt = source_format(path, config.format)
        loaded = load_disk(path) if fmt == "disk" else None
        if loaded is not None and not hasattr(loaded, "features"):  # a DatasetDict: its own splits
            bundle = _hf_bundle(config, columns, dict(loaded), where=path, name=path.name, source=str(path), revision=None)
        else:
            table = hf_rows(loaded) if loaded is not None else read_source_table(path, fmt)
            splits = _split_table(config, path, table) if hasattr(config, "split_fractions") else _one_split(config, path, table)
            bundle = DatasetBundle(name=path.stem, source=str(path), splits=splits)
    if config.label_map:
        bundle = apply_label_map(bundle, config.label_map, getattr(config, "labels", None), where=f"{where}.label_map")
    return bundle


def _one_split(config: Any, path: Path, table: tuple[list[str], list[dict[str, Any]], list[int]]) -> dict[str, Dataset]:
    """A single file of an extra evaluation set: the whole file is one split, named 'all'."""
    cols, rows, numbers = table
    return {"all": build_dataset(path=path, name=path.stem, split="all", columns=cols, rows=rows, row_numbers=numbers, **_common(config, config.columns))}


# ------------------------------------------------------------------ label_map


def label_order(mapping: Mapping[str, str], declared: Sequence[str] | None) -> tuple[str, ...]:
    """The mapped label set: the declared labels, else the map's values in the order written."""
    return tuple(declared) if declared else tuple(dict.fromkeys(mapping.values()))


def map_split(ds: Dataset, mapping: Mapping[str, str], names: Sequence[str], *, where: str, source: str) -> Dataset:
    """``ds`` with its labels renamed through ``mapping`` and indexed into ``names``."""
    index = {n: k for k, n in enumerate(names)}
    raw = [ds.label_names[y] for y in ds.labels]
    for label in dict.fromkeys(raw):
        if label not in mapping:
            first = ds.ids[raw.index(label)]
            raise DataError(MSG_UNMAPPED_LABEL.format(
                where=where, label=label, source=source, split=ds.split, ident=first,
                count=raw.count(label), keys=", ".join(map(repr, mapping)),
            ))  # fmt: skip
    return Dataset(
        name=ds.name, split=ds.split, ids=ds.ids, texts=ds.texts,
        labels=tuple(index[mapping[label]] for label in raw), label_names=tuple(names), groups=ds.groups,
    )  # fmt: skip


def apply_label_map(bundle: DatasetBundle, mapping: Mapping[str, str], declared: Sequence[str] | None, *, where: str) -> DatasetBundle:
    names = label_order(mapping, declared)
    splits = {k: map_split(v, mapping, names, where=where, source=bundle.source) for k, v in bundle.splits.items()}
    return DatasetBundle(name=bundle.name, source=bundle.source, splits=splits, resources=bundle.resources, revision=bundle.revision)


# ------------------------------------------------------------------ extra evaluation sets


def load_eval_set(name: str, config: Any, main: Any, label_names: Sequence[str], base_dir: Path) -> tuple[Dataset, DatasetBundle]:
    """One ``dataset.extra_eval`` set as a Dataset over the main label set, and its bundle.

    Columns and label_map default to the main dataset's; its labels must fall in the main label
    set (the model's), indexed the same way, so its predictions mean what the main split's mean.
    """
    where = f"dataset.extra_eval.{name}"
    updates: dict[str, Any] = {}
    if config.columns is None:
        updates["columns"] = main.columns
    if config.label_map is None and main.label_map is not None:
        updates["label_map"] = main.label_map
    resolved = config.model_copy(update=updates) if updates else config
    bundle = load_source(resolved, base_dir, where=where)
    split = resolved.split or (main.eval_split if main.eval_split in bundle.splits else None)
    if split is None and len(bundle.splits) == 1:
        split = next(iter(bundle.splits))
    if split is None or split not in bundle.splits:
        raise DataError(MSG_EVAL_SET_SPLIT.format(name=name, split=split or main.eval_split, splits=", ".join(bundle.splits)))
    ds = bundle.splits[split]
    index = {n: k for k, n in enumerate(label_names)}
    for label in dict.fromkeys(ds.label_names[y] for y in ds.labels):
        if label not in index:
            raise DataError(MSG_EVAL_SET_LABELS.format(name=name, label=label, labels=list(label_names)))
    ds = Dataset(
        name=ds.name, split=split, ids=ds.ids, texts=ds.texts, labels=tuple(index[ds.label_names[y]] for y in ds.labels),
        label_names=tuple(label_names), groups=ds.groups,
    )  # fmt: skip
    return ds.sample(resolved.max_examples, main.split_seed), bundle
