"""Load a model kind from a folder and a tiny CSV the way a run file would (shared by the
gradient tests of the encoder kinds and of the prompted / NLI kinds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.config import parse_run_config
from harness.data import load_bundle
from harness.models.kinds.base import load_kind
from harness.models.sources import resolve


def load(folder: Path, csv: Path, kind: str, params: dict[str, Any], max_length: int) -> Any:
    raw = {
        "dataset": {"path": str(csv), "columns": {"id": "id"}, "labels": ["neg", "pos"],
                    "split_fractions": {"train": 0.5, "test": 0.5}},
        "model": {"path": str(folder), "kind": kind, "params": params, "max_length": max_length},
        "suites": [{"name": "accuracy"}],
    }  # fmt: skip
    config, _ = parse_run_config(raw, source="test")
    found = resolve(config.model, where="model", base_dir=Path.cwd())
    return load_kind(config, found, load_bundle(config.dataset))
