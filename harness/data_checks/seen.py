"""Which data the evaluated model saw: the splits it was trained or selected on, and named files.

``auto`` (no ``seen_splits`` given) reads the fine-tuning model card the harness writes into
every fine-tuned checkpoint (its ``data.train`` and ``data.dev`` splits, with their digests); a
model loaded as-is has no card, and then every split of the dataset other than the evaluation
split counts (leakage between the splits of one dataset is worth knowing whoever trained the
model). Files the user names (``seen_files``) are added in either case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.data import DatasetBundle
from harness.data_checks.contamination import SeenSet
from harness.data_checks.slices import slug
from harness.errors import ConfigError, DataError

MSG_NO_SPLIT = "data suite: seen_splits names {split!r}, but the dataset has no such split (splits: {splits})"
MSG_NO_COLUMN = "data suite: seen_files[{i}]: {path}: no column {column!r} (columns: {columns})"
MSG_CARD_DIGEST = (
    "the model card's {role} split {split!r} has digest {card}… but the dataset's has {now}… (a "
    "sample, or other data): contamination is checked against the whole split"
)


@dataclass(frozen=True)
class Seen:
    sets: list[SeenSet]
    reference: SeenSet | None  # the training data, for the shift test
    how: str
    warnings: list[str] = field(default_factory=list)


def _from_card(bundle: DatasetBundle, card: Mapping[str, Any]) -> tuple[list[SeenSet], list[str]]:
    out, warnings = [], []
    for role in ("train", "dev"):
        entry = (card.get("data") or {}).get(role)
        if not isinstance(entry, Mapping) or entry.get("split") not in bundle.splits:
            continue
        ds = bundle.splits[entry["split"]]
        digest = str(entry.get("digest") or "")
        if digest and digest != ds.digest():
            warnings.append(MSG_CARD_DIGEST.format(role=role, split=ds.split, card=digest[:12], now=ds.digest()[:12]))
        out.append(SeenSet(ds.split, ds.ids, ds.texts))
    return out, warnings


def _file(i: int, spec: Any) -> SeenSet:
    from harness.datasources import read_source_table, source_format

    path = Path(spec.path).expanduser()
    path = path if path.is_absolute() else Path.cwd() / path
    columns, rows, numbers = read_source_table(path, source_format(path, spec.format))
    for column in [spec.text, *([spec.id] if spec.id else [])]:
        if column not in columns:
            raise DataError(MSG_NO_COLUMN.format(i=i, path=path, column=column, columns=", ".join(columns)))
    texts = [str(r.get(spec.text) or "") for r in rows]
    ids = [str(r.get(spec.id)) if spec.id else f"row-{n}" for r, n in zip(rows, numbers, strict=True)]
    return SeenSet(f"file-{slug(path.stem)}", ids, texts)


def seen_data(
    bundle: DatasetBundle | None, eval_split: str, card: Mapping[str, Any] | None,
    seen_splits: Sequence[str] | None, seen_files: Sequence[Any],
) -> Seen:  # fmt: skip
    """The seen sets (module docstring), the reference for the shift test, and how they were chosen."""
    splits = bundle.splits if bundle is not None else {}
    warnings: list[str] = []
    if seen_splits is not None:
        for name in seen_splits:
            if name not in splits:
                raise ConfigError(MSG_NO_SPLIT.format(split=name, splits=", ".join(splits) or "none"))
        sets = [SeenSet(n, splits[n].ids, splits[n].texts) for n in seen_splits]
        how = "the splits named in seen_splits"
    elif card and card.get("data") and bundle is not None:
        sets, warnings = _from_card(bundle, card)
        how = "the fine-tuning stage's train and dev splits (model card)"
    else:
        sets = [SeenSet(n, d.ids, d.texts) for n, d in splits.items() if n != eval_split]
        how = "every other split of the dataset (the model has no fine-tuning card)"
    files = [_file(i, spec) for i, spec in enumerate(seen_files)]
    if files:
        how += " and the seen_files"
    sets += files
    reference = sets[0] if sets else None
    return Seen(sets, reference, how, warnings)
