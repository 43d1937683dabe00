"""What the gate and verify read from a run folder besides the record: per-example evidence.

* ``predictions.jsonl``: one row per evaluation example, ``{id, label, predicted, probabilities}``
  (labels as indices or as names from the record's label set). A row whose prediction failed
  has ``predicted: null``, ``probabilities: null`` and an ``error`` reason; it is kept (its id
  counts) but marked unanswered, and no metric or test scores it.
* ``examples/<suite>.jsonl`` plus a suite's ``details["per_example"]`` declaration, which says how
  a metric decomposes into per-example values, so the gate can run a paired test on it::

      details = {"per_example": {
          "pwws.attack_success_rate": {"field": "success", "where": {"recipe": "pwws"}},
          "single_stream.p99_ms": {"field": "latency_ms", "where": {"scenario": "single_stream"},
                                   "aggregate": "quantile:0.99"},
      }}

  ``aggregate`` is ``mean`` (default: paired over shared ids), ``median`` or ``quantile:Q``
  (independent samples, e.g. latency calls). A declaration may give ``samples`` (a list of
  numbers) instead of ``field`` when the distribution is stored in the record itself.
  Suites write their own declarations (record schema 1.2 on); for older records, which carry
  no capabilities, ``legacy_per_example_declaration`` describes the built-in suites' rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.errors import RecordError
from harness.records import PREDICTIONS_FILE, RECORD_FILE, RunRecord, SuiteRecord, load_record
from harness.store import EXAMPLES_DIR, iter_jsonl

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PredictionTable:
    """predictions.jsonl as arrays, in file order.

    Unanswered rows (a failed prediction) have ``answered`` False, ``predicted`` -1 and a row
    of NaN probabilities; ``errors`` maps their ids to the recorded reason.
    """

    ids: tuple[str, ...]
    labels: IntArray
    predicted: IntArray
    probabilities: FloatArray  # (n, k); (n, 0) when no row carries probabilities
    answered: npt.NDArray[np.bool_] | None = None  # None: every row answered
    errors: tuple[tuple[str, str], ...] = ()

    def index(self) -> dict[str, int]:
        return {ident: i for i, ident in enumerate(self.ids)}

    def answered_mask(self) -> npt.NDArray[np.bool_]:
        if self.answered is None:
            return np.ones(len(self.ids), dtype=bool)
        return self.answered

    def take(self, idx: list[int] | IntArray) -> PredictionTable:
        """The rows at ``idx``, in that order."""
        index = np.asarray(idx, dtype=np.int64)
        answered = self.answered_mask()[index]
        keep = {self.ids[i] for i in index.tolist()}
        return PredictionTable(
            ids=tuple(self.ids[i] for i in index.tolist()),
            labels=self.labels[index],
            predicted=self.predicted[index],
            probabilities=self.probabilities[index] if self.probabilities.size else
            self.probabilities[:0].reshape(index.size, self.probabilities.shape[1]),
            answered=None if bool(answered.all()) else answered,
            errors=tuple(e for e in self.errors if e[0] in keep),
        )

    def scored(self) -> PredictionTable:
        """Only the answered rows (what the accuracy suite scores)."""
        return self.take(np.flatnonzero(self.answered_mask()))


@dataclass(frozen=True)
class RunData:
    """A record and the folder it came from (``folder`` holds predictions and examples)."""

    path: Path
    folder: Path
    record: RunRecord
    _cache: dict[str, PredictionTable] = field(default_factory=dict, compare=False, repr=False)

    def has_predictions(self) -> bool:
        return (self.folder / PREDICTIONS_FILE).is_file()

    def predictions(self) -> PredictionTable:
        """Read once per run (the gate asks several times for large files)."""
        if "table" not in self._cache:
            self._cache["table"] = read_predictions(
                self.folder / PREDICTIONS_FILE, self.label_names()
            )
        return self._cache["table"]

    def label_names(self) -> list[str]:
        return list(self.record.dataset.label_names or self.record.model.label_names)

    def examples_file(self, suite: SuiteRecord) -> Path:
        rel = suite.examples_file or f"{EXAMPLES_DIR}/{suite.name}.jsonl"
        return self.folder / rel


def load_run(path: Path) -> RunData:
    """A run folder or a record.json path; predictions and examples are looked up beside it."""
    if not path.exists():
        raise RecordError(f"{path}: no such run folder or record file")
    record = load_record(path)
    folder = path if path.is_dir() else path.parent
    return RunData(path=path, folder=folder, record=record)


def _label_index(value: Any, names: dict[str, int], where: str) -> int:
    if isinstance(value, str) and value in names:
        return names[value]
    if isinstance(value, int) and not isinstance(value, bool):
        if names and not 0 <= value < len(names):
            raise RecordError(
                f"{where}: label index {value} is outside the label set {list(names)}"
            )
        return value
    raise RecordError(f"{where}: label {value!r} is not in the record's label set {list(names)}")


def read_predictions(path: Path, label_names: list[str]) -> PredictionTable:
    """Read and check predictions.jsonl; every malformed row is an error naming file and line."""
    if not path.is_file():
        raise RecordError(f"{path}: no predictions file")
    ids: list[str] = []
    labels: list[int] = []
    predicted: list[int] = []
    probs: list[list[float] | None] = []
    errors: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    index = {name: k for k, name in enumerate(label_names)}
    for lineno, row in iter_jsonl(path):
        where = f"{path}: line {lineno}"
        if not isinstance(row, dict) or not {"id", "label", "predicted"} <= set(row):
            raise RecordError(
                f"{where}: expected an object with id, label, predicted and probabilities"
            )
        ident = str(row["id"])
        if ident in seen:
            raise RecordError(f"{where}: duplicate id {ident!r} (first at line {seen[ident]})")
        seen[ident] = lineno
        ids.append(ident)
        labels.append(_label_index(row["label"], index, f"{where}: label"))
        if row["predicted"] is None:
            errors.append((ident, _failure_reason(row, where)))
            predicted.append(-1)
            probs.append(None)
            continue
        predicted.append(_label_index(row["predicted"], index, f"{where}: predicted"))
        probs.append(_probabilities(row.get("probabilities"), where))
    return _table(path, ids, labels, predicted, probs, errors)


def _failure_reason(row: dict[str, Any], where: str) -> str:
    """A row without a prediction must say why (the runner writes ``error``) and carry no scores."""
    reason = row.get("error")
    if not isinstance(reason, str) or not reason:
        raise RecordError(f"{where}: 'predicted' is null but the row gives no 'error' reason")
    if row.get("probabilities") is not None:
        raise RecordError(f"{where}: 'predicted' is null but the row has probabilities")
    return reason


def _probabilities(p: Any, where: str) -> list[float]:
    if p is None:
        return []
    if not isinstance(p, list) or not all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in p
    ):
        raise RecordError(f"{where}: probabilities must be a list of numbers")
    return [float(x) for x in p]


def _table(
    path: Path,
    ids: list[str],
    labels: list[int],
    predicted: list[int],
    probs: list[list[float] | None],
    errors: list[tuple[str, str]],
) -> PredictionTable:
    widths = {len(p) for p in probs if p is not None}
    if len(widths) > 1:
        raise RecordError(
            f"{path}: rows have probability vectors of different lengths {sorted(widths)}"
        )
    width = widths.pop() if widths else 0
    matrix = np.full((len(ids), width), np.nan)
    for i, p in enumerate(probs):
        if p:
            matrix[i] = p
    answered = np.asarray([p is not None for p in probs], dtype=bool)
    return PredictionTable(
        ids=tuple(ids),
        labels=np.asarray(labels, dtype=np.int64),
        predicted=np.asarray(predicted, dtype=np.int64),
        probabilities=matrix,
        answered=None if bool(answered.all()) else answered,
        errors=tuple(errors),
    )


# ------------------------------------------------------------------ declared per-example values


@dataclass(frozen=True)
class PerExampleSpec:
    """How one metric decomposes into per-example values (a suite's declaration, typed)."""

    field: str | None  # a row column; dots walk into nested objects ("benchmark.stats.data")
    where: tuple[tuple[str, Any], ...]
    aggregate: str  # "mean", "median" or "quantile:Q"
    samples: tuple[float, ...] | None = None
    positive: tuple[Any, ...] | None = None  # values counted as 1 (others 0), for string outcomes
    exclude: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # rows to leave out
    scale: float = 1.0  # e.g. 1000 for seconds recorded, milliseconds reported

    @property
    def paired(self) -> bool:
        return self.aggregate == "mean" and self.samples is None

    def quantile(self) -> float | None:
        if self.aggregate == "median":
            return 0.5
        if self.aggregate.startswith("quantile:"):
            return float(self.aggregate.split(":", 1)[1])
        return None


# Records older than schema 1.2 carry no declarations: their built-in suites' rows are
# described here, as the suites wrote them then (new records declare their own in
# details["per_example"], written by the suite). Each use is self-checked: the mean of the values
# must reproduce the recorded metric, or the gate falls back to interval overlap and says so.
_LEGACY_LATENCY_ROWS = {
    "single_stream": "single_stream/forward",
    "single_stream.tokenize": "single_stream/tokenize",
    "single_stream.end_to_end": "single_stream/end_to_end",
}
_LEGACY_ROBUSTNESS_OUTCOMES: dict[str, dict[str, Any]] = {
    "attack_success_rate": {"positive": ["succeeded"], "exclude": {"result": ["skipped"]}},
    "accuracy_under_attack": {"positive": ["failed", "timed_out"]},
    "clean_accuracy": {"positive": ["succeeded", "failed", "timed_out"]},
}


def legacy_per_example_declaration(suite: str, metric: str) -> dict[str, Any] | None:
    """The declaration a pre-1.2 record of a built-in suite would carry for ``metric``, or None.

    Only for records without capabilities; it is keyed by the recorded suite name, as before.
    """
    head, _, tail = metric.rpartition(".")
    if suite == "robustness" and head and tail in _LEGACY_ROBUSTNESS_OUTCOMES:
        return {"field": "result", "where": {"recipe": head}, **_LEGACY_ROBUSTNESS_OUTCOMES[tail]}
    if suite == "invariance" and head and tail in ("flip_rate", "mean_abs_delta_p_true"):
        field_name = "flipped" if tail == "flip_rate" else "abs_delta_p_true"
        return {"field": field_name, "where": {"perturbation": head, "changed": True}}
    if (
        suite == "latency"
        and head in _LEGACY_LATENCY_ROWS
        and tail.startswith("p")
        and tail.endswith("_ms")
    ):
        q = tail[1:-3]
        if q.isdigit():
            return {
                "field": "benchmark.stats.data",
                "where": {"id": _LEGACY_LATENCY_ROWS[head]},
                "aggregate": f"quantile:{int(q) / 100}",
                "scale": 1000.0,
            }
    return None


def per_example_spec(suite: SuiteRecord, metric: str) -> PerExampleSpec | None:
    """The suite's declaration for ``metric`` (for a pre-1.2 record, the built-in suite's), or
    None; bad ones raise."""
    declared = suite.details.get("per_example")
    if isinstance(declared, dict) and metric in declared:
        raw = declared[metric]
    elif suite.capabilities is None:
        raw = legacy_per_example_declaration(suite.name, metric)
        if raw is None:
            return None
    else:
        return None
    where = f"suite {suite.name!r}: details.per_example.{metric}"
    if not isinstance(raw, dict):
        raise RecordError(f"{where}: expected a mapping with 'field' or 'samples'")
    aggregate = str(raw.get("aggregate", "mean"))
    if aggregate not in ("mean", "median") and not aggregate.startswith("quantile:"):
        raise RecordError(
            f"{where}: aggregate must be mean, median or quantile:Q (got {aggregate!r})"
        )
    if aggregate.startswith("quantile:"):
        try:
            q = float(aggregate.split(":", 1)[1])
        except ValueError:
            raise RecordError(f"{where}: bad quantile in {aggregate!r}") from None
        if not 0 <= q <= 1:
            raise RecordError(f"{where}: quantile must be within 0..1 (got {q})")
    samples = raw.get("samples")
    if samples is not None:
        if not isinstance(samples, list) or not all(isinstance(x, (int, float)) for x in samples):
            raise RecordError(f"{where}: samples must be a list of numbers")
        return PerExampleSpec(None, (), aggregate, tuple(float(x) for x in samples))
    field_name = raw.get("field")
    filters = raw.get("where") or {}
    positive = raw.get("positive")
    exclude = raw.get("exclude") or {}
    scale = raw.get("scale", 1.0)
    if not isinstance(field_name, str):
        raise RecordError(f"{where}: 'field' must name a per-example column")
    if not isinstance(filters, dict) or not isinstance(exclude, dict):
        raise RecordError(f"{where}: 'where' and 'exclude' must be mappings of column -> value(s)")
    if positive is not None and not isinstance(positive, list):
        raise RecordError(f"{where}: 'positive' must be a list of values counted as 1")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise RecordError(f"{where}: 'scale' must be a number")
    return PerExampleSpec(
        field=field_name,
        where=tuple(sorted(filters.items())),
        aggregate=aggregate,
        positive=None if positive is None else tuple(positive),
        exclude=tuple(
            sorted((k, tuple(v if isinstance(v, list) else [v])) for k, v in exclude.items())
        ),
        scale=float(scale),
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return float(value)
    return None


def _dig(row: dict[str, Any], dotted: str) -> Any:
    node: Any = row
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def declared_values(run: RunData, suite: SuiteRecord, spec: PerExampleSpec) -> dict[str, float]:
    """id (or a running number, for unpaired samples) -> value, from the suite's examples file."""
    if spec.samples is not None:
        return {str(i): v * spec.scale for i, v in enumerate(spec.samples)}
    path = run.examples_file(suite)
    if not path.is_file():
        raise RecordError(
            f"{path}: suite {suite.name!r} has per-example values but the file is missing"
        )
    out: dict[str, float] = {}
    for lineno, row in iter_jsonl(path):
        if not isinstance(row, dict) or any(row.get(k) != v for k, v in spec.where):
            continue
        if any(row.get(k) in values for k, values in spec.exclude):
            continue
        raw = _dig(row, spec.field or "")
        items = raw if isinstance(raw, list) and not spec.paired else [raw]
        for k, item in enumerate(items):
            value = (1.0 if item in spec.positive else 0.0) if spec.positive else _number(item)
            if value is None:
                continue
            key = str(row.get("id")) if spec.paired else f"{lineno}:{k}"
            out[key] = value * spec.scale
    return out


def record_path_label(path: Path) -> str:
    return str(path / RECORD_FILE) if path.is_dir() else str(path)
