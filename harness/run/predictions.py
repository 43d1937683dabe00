"""The evaluation split's predictions: computed once per run, appended as they finish, shared by
every suite (``ctx.predictions()``) and cached per run folder.

An example the model fails on (it raises, or returns NaN / infinite scores) costs one ``error``
row, not the run; suites see it in ``Predictions.errors`` and count it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.data import Dataset
from harness.errors import HarnessError
from harness.models.base import ModelAdapter
from harness.predictions import Predictions
from harness.records import PREDICTIONS_FILE
from harness.store import ExampleLog, read_jsonl

PREDICTION_CHUNK = 512  # predictions are computed and flushed per fixed chunk of the eval split
MSG_NON_FINITE = "model returned non-finite scores (NaN or infinite logits)"

_CACHE: dict[Path, Predictions] = {}


def predict_rows(model: ModelAdapter, data: Dataset, start: int = 0, end: int | None = None) -> list[dict[str, Any]]:
    """Prediction rows of ``data[start:end]`` in one call to the model; a call that fails is
    retried example by example so one bad input costs one ``error`` row."""
    end = len(data) if end is None else end
    texts, names = data.texts[start:end], data.label_names
    probs, failures = _probabilities(model, texts)
    rows: list[dict[str, Any]] = []
    for j, ident in enumerate(data.ids[start:end]):
        label, p, reason = names[data.labels[start + j]], probs[j], failures.get(j)
        if reason is None and not np.all(np.isfinite(p)):
            reason = MSG_NON_FINITE
        if reason is not None:
            rows.append({"id": ident, "label": label, "predicted": None, "probabilities": None, "error": reason})
        else:
            rows.append({
                "id": ident, "label": label, "predicted": names[int(np.argmax(p))],
                "probabilities": [float(v) for v in p],
            })  # fmt: skip
    return rows


def _probabilities(model: ModelAdapter, texts: Sequence[str]) -> tuple[list[Any], dict[int, str]]:
    try:
        return list(model.predict_proba(list(texts))), {}
    except (KeyboardInterrupt, HarnessError):
        raise
    except Exception:
        probs: list[Any] = []
        failures: dict[int, str] = {}
        for j, text in enumerate(texts):
            try:
                probs.append(model.predict_proba([text])[0])
            except (KeyboardInterrupt, HarnessError):
                raise
            except Exception as exc:  # a model that raises on this input
                probs.append(None)
                failures[j] = f"model raised {type(exc).__name__}: {exc}"[:500]
        return probs, failures


def compute_predictions(
    model: ModelAdapter, data: Dataset, run_dir: Path, progress: Callable[[int, int], None]
) -> Predictions:
    """Predict the eval split in fixed chunks, appending each finished chunk; resume skips done ones.

    Chunks are fixed slices of the split (not of the remaining ids), so a resumed run batches
    exactly as an uninterrupted one and produces the same bytes.
    """
    log = ExampleLog(run_dir / PREDICTIONS_FILE).open()
    try:
        for start in range(0, len(data), PREDICTION_CHUNK):
            end = min(start + PREDICTION_CHUNK, len(data))
            if not all(i in log.done for i in data.ids[start:end]):
                log.extend(predict_rows(model, data, start, end))
            progress(end, len(data))
        log.rewrite_in_order(list(data.ids))
    finally:
        log.close()
    _CACHE.pop(run_dir, None)
    return shared_predictions(run_dir, data)


def shared_predictions(run_dir: Path, data: Dataset) -> Predictions:
    """The run's predictions as suites see them (read once from ``predictions.jsonl``)."""
    cached = _CACHE.get(run_dir)
    if cached is None:
        rows = {r["id"]: r for r in read_jsonl(run_dir / PREDICTIONS_FILE)}
        cached = _CACHE[run_dir] = as_predictions([rows[i] for i in data.ids], data.label_names)
    return cached


def as_predictions(rows: Sequence[dict[str, Any]], label_names: Sequence[str]) -> Predictions:
    """Prediction rows (in example order) as ``Predictions``: failed rows go to ``errors``."""
    index = {n: k for k, n in enumerate(label_names)}
    ok = [r for r in rows if r.get("error") is None]
    return Predictions(
        ids=tuple(r["id"] for r in ok),
        labels=tuple(index[r["label"]] for r in ok),
        probabilities=np.array([r["probabilities"] for r in ok], dtype=np.float64).reshape(len(ok), len(index)),
        errors={r["id"]: r["error"] for r in rows if r.get("error") is not None},
    )


def predictions_of(model: ModelAdapter, data: Dataset) -> Predictions:
    """Predictions of ``data`` computed in memory in one call (a sweep shard's own part)."""
    return as_predictions(predict_rows(model, data), data.label_names)
