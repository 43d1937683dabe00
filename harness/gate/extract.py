"""Per-example evidence of one run for one gate rule: the values a metric is the mean of, the
prediction table a whole-table statistic is computed from, or the samples a quantile is taken of.

Where the values come from is read from the record, never from a list of suite names:

* a suite whose capabilities say ``prediction_metrics`` (the accuracy suite) is scored from the
  run's ``predictions.jsonl``: accuracy and error rate as 0/1 outcomes, Brier and log loss as
  per-example losses, the other classification metrics as statistics of the whole table;
* any other suite's metric decomposes as the suite declares in ``details["per_example"]``
  (``harness.gate.inputs``).

Every extraction is self-checked against the recorded value; values that do not reproduce it
raise ``Unusable`` and the gate falls back to the records' intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from harness.errors import RecordError
from harness.gate.inputs import PredictionTable, RunData, declared_values, per_example_spec
from harness.gate.rules import Rule
from harness.gate.scorers import PredictionMetric, per_example_losses, prediction_metric
from harness.records import Metric

FloatArray = npt.NDArray[np.float64]
SELF_CHECK_TOLERANCE = 1e-6
BINARY_PREDICTION_METRICS = {"accuracy": True, "error_rate": False}  # metric -> outcome = correct?


@dataclass(frozen=True)
class ExampleValues:
    """A metric that is the mean of one value per example id."""

    values: dict[str, float]
    binary: bool  # every value is 0 or 1


@dataclass(frozen=True)
class TableValues:
    """A metric that is a statistic of the whole prediction table (answered rows only)."""

    table: PredictionTable
    metric: PredictionMetric
    k: int


@dataclass(frozen=True)
class SampleValues:
    """A metric that is a quantile of independent samples (latency calls)."""

    samples: FloatArray
    quantile: float


Extracted = ExampleValues | TableValues | SampleValues


class Unusable(Exception):
    """Per-example values that do not reproduce the recorded metric: not evidence."""


def _check_mean(rule: Rule, run: RunData, values: dict[str, float]) -> None:
    metric = recorded(run, rule)
    if not values:
        raise Unusable(f"the run {run.path} has no per-example values for {rule.metric}")
    if metric is None or metric.value is None:
        return
    mean = float(np.mean(list(values.values())))
    if abs(mean - metric.value) > SELF_CHECK_TOLERANCE * max(1.0, abs(metric.value)):
        raise Unusable(
            f"the per-example values of {rule.metric} in {run.path} do not reproduce the "
            f"recorded value {metric.value:.6g} (they give {mean:.6g})"
        )


def recorded(run: RunData, rule: Rule) -> Metric | None:
    """The metric ``rule`` names, as ``run`` recorded it (None when missing)."""
    suite = run.record.suite(rule.metric.suite)
    return None if suite is None else suite.metric(rule.metric.metric)


def _examples(values: dict[str, float]) -> ExampleValues:
    arr = np.asarray(list(values.values()))
    return ExampleValues(values, bool(np.all(np.isin(arr, (0.0, 1.0)))))


def _from_predictions(run: RunData, rule: Rule) -> Extracted | None:
    suite = run.record.suite(rule.metric.suite)
    if suite is None or not suite.caps().prediction_metrics or not run.has_predictions():
        return None
    table = run.predictions().scored()
    name, labels = rule.metric.metric, run.label_names()
    ids = table.ids
    if name in BINARY_PREDICTION_METRICS:
        outcome = (table.predicted == table.labels) == BINARY_PREDICTION_METRICS[name]
        values = dict(zip(ids, outcome.astype(np.float64).tolist(), strict=True))
        _check_mean(rule, run, values)
        return ExampleValues(values, True)
    has_probs = bool(table.probabilities.size)
    losses = per_example_losses(name, table.labels, table.probabilities) if has_probs else None
    if losses is not None:
        values = dict(zip(ids, losses.tolist(), strict=True))
        _check_mean(rule, run, values)
        return ExampleValues(values, False)
    scorer = prediction_metric(name, labels, int(suite.params.get("ece_bins", 15)))
    if scorer is None or (scorer.needs_probabilities and not has_probs) or not ids:
        return None
    extracted = TableValues(table, scorer, len(labels))
    _check_table(rule, run, extracted)
    return extracted


def _check_table(rule: Rule, run: RunData, t: TableValues) -> None:
    metric = recorded(run, rule)
    if metric is None or metric.value is None:
        return
    probs = t.table.probabilities[None, :, :] if t.metric.needs_probabilities else None
    value = float(t.metric.score(t.table.labels[None, :], t.table.predicted[None, :], probs)[0])
    if not abs(value - metric.value) <= SELF_CHECK_TOLERANCE * max(1.0, abs(metric.value)):
        raise Unusable(
            f"{rule.metric} recomputed from {run.path}'s predictions ({value:.6g}) does not "
            f"reproduce the recorded value {metric.value:.6g}"
        )


def _from_declaration(run: RunData, rule: Rule) -> Extracted | None:
    suite = run.record.suite(rule.metric.suite)
    if suite is None:
        return None
    spec = per_example_spec(suite, rule.metric.metric)
    if spec is None:
        return None
    try:
        values = declared_values(run, suite, spec)
    except RecordError as exc:
        raise Unusable(exc.message) from None
    if not spec.paired:
        metric = recorded(run, rule)
        arr = np.asarray(list(values.values()), dtype=np.float64)
        if arr.size == 0:
            raise Unusable(f"the run {run.path} has no samples for {rule.metric}")
        value = None if metric is None else metric.value
        if value is not None and not float(arr.min()) - 1e-9 <= value <= float(arr.max()) + 1e-9:
            raise Unusable(
                f"the samples of {rule.metric} in {run.path} do not reproduce the recorded value "
                f"{value:.6g}"
            )
        q = spec.quantile()
        return SampleValues(arr, 0.5 if q is None else q)
    _check_mean(rule, run, values)
    return _examples(values)


def extract(run: RunData, rule: Rule) -> Extracted | None:
    """The per-example evidence one run holds for ``rule``; ``Unusable`` when it is unsound."""
    found = _from_predictions(run, rule)
    return found if found is not None else _from_declaration(run, rule)


def aligned(
    base: PredictionTable, cand: PredictionTable
) -> tuple[PredictionTable, PredictionTable]:
    """Both tables restricted to the ids both runs answered, in the baseline's order."""
    ci = cand.index()
    ok_b, ok_c = base.answered_mask(), cand.answered_mask()
    shared = [i for i, ident in enumerate(base.ids) if ident in ci and ok_b[i] and ok_c[ci[ident]]]
    return base.take(shared), cand.take([ci[base.ids[i]] for i in shared])
