"""The learning-curve chart: test accuracy against training shots, one line per method.

Entries are grouped by what their run file says: the fine-tuning method (``finetune.method``)
and shots per class (``finetune.shots``; unset is "all" of the train split), or, for a run with
no fine-tune stage and a model kind other than a sequence classifier (zero-shot, prompted LMs),
the kind at 0 shots. Entries of a cell that differ only in seed are averaged: the value is the
mean accuracy over seeds and the interval Student-t over seeds (n >= 2); a cell with one entry
shows that run's own interval. The accuracy comes from one benchmark (the most populated
accuracy table), so every point is measured on the same split with the same suite definition.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from harness.leaderboard.charts import find, is_accuracy
from harness.leaderboard.ranking import Benchmark
from harness.render.curves import CurvePoint, cell_of, learning_curves
from harness.render.html import Markup
from harness.stats import t_mean_ci

CHART_ID = "c-curve"
TITLE = (
    "Learning curves: accuracy vs training examples per class (mean over seeds, 95% Student-t "
    "interval over seeds; one run: its own interval)"
)


def curve_points(bench: Benchmark) -> dict[str, list[CurvePoint]]:
    """Every method's points from the benchmark's rows (see the module docstring)."""
    cells: dict[tuple[str, int | None], list[Any]] = defaultdict(list)
    for row in bench.rows:
        cell = cell_of(row.entry.record.config)
        metric = row.suite.metric("accuracy")
        if cell is not None and metric is not None and metric.value is not None:
            cells[cell].append(metric)
    series: dict[str, list[CurvePoint]] = defaultdict(list)
    for (method, shots), metrics in sorted(
        cells.items(), key=lambda kv: (kv[0][0], kv[0][1] is None, kv[0][1] or 0)
    ):
        values = [float(m.value) for m in metrics]
        if len(values) == 1:
            low, high = metrics[0].ci_low, metrics[0].ci_high
        else:
            ci = t_mean_ci(values, bounds=(0.0, 1.0))
            low, high = ci.low, ci.high
        series[method].append(CurvePoint(shots, sum(values) / len(values), low, high, len(values)))
    return dict(series)


def learning_curve(benchmarks: Sequence[Benchmark]) -> Markup:
    """The chart, or nothing when no method was run at two or more shot settings."""
    found = find(benchmarks, is_accuracy)
    if found is None:
        return Markup("")
    return learning_curves(CHART_ID, curve_points(found[0]), title=TITLE, y_label="accuracy")
