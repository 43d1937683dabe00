"""Group metrics on the dataset's sensitive columns, computed by Fairlearn's ``MetricFrame``.

Every figure is "positive class vs the rest": ``y_true`` and ``y_pred`` are 1 where the gold /
predicted label is the positive label. Per group: accuracy, selection rate, TPR, FPR, F1; gaps:
demographic parity difference / ratio (selection rate) and equalized odds difference / ratio
(worst of TPR and FPR). Each group's rates get their own 95% Wilson interval; every gap gets
the interval of ``harness.bias.gap_intervals`` (simultaneous Wilson boxes over the rates the gap
uses — not a bootstrap, whose percentile interval of a max − min is biased upwards and can
exclude its own estimate). Intervals are defined whenever the estimate is.

Fairlearn reports 0 for the TPR of a group without positives (and the FPR of one without
negatives: scikit-learn's 0/0 → 0), and its ``equalized_odds_difference`` then counts that 0 in
the gap. We report those rates as undefined (null) with a warning, and such a group does not
take part in that rate's gap; where every group has both labels our gaps equal Fairlearn's.
Groups smaller than ``min_group_size`` are reported but left out of the gaps. Fewer than two
groups left: every gap is undefined (null), never 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.bias.gap_intervals import (
    difference_bounds,
    method_note,
    ratio_bounds,
    wilson_boxes,
)
from harness.errors import DataError
from harness.records import Metric, finite_or_none

MSG_NO_COLUMN = (
    "bias.sensitive_columns: column {column!r} is not a group column of the dataset "
    "(group columns: {present}); declare it under dataset.columns.groups"
)
MSG_ALL_NULL = "bias: sensitive column {column!r} has no values on the evaluation split (all empty)"
CI_QUANTILES = [0.025, 0.975]
RATES = ("accuracy", "selection_rate", "tpr", "fpr", "f1")

IntArray = npt.NDArray[np.int64]
Gap = tuple[float | None, float | None, float | None]  # value, ci low, ci high
SIMPLE_GAPS = (("demographic_parity", "selection_rate"), ("accuracy", "accuracy"))


@dataclass
class GroupResult:
    key: str
    metrics: list[Metric] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def check_columns(groups: Mapping[str, Sequence[str | None]], columns: Sequence[str]) -> None:
    for column in columns:
        if column not in groups:
            raise DataError(
                MSG_NO_COLUMN.format(column=column, present=", ".join(sorted(groups)) or "none")
            )
        if all(v is None for v in groups[column]):
            raise DataError(MSG_ALL_NULL.format(column=column))


def _metric_functions(with_f1: bool) -> dict[str, Any]:
    from fairlearn.metrics import false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score, f1_score

    fns: dict[str, Any] = {
        "accuracy": accuracy_score,
        "selection_rate": selection_rate,
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
    }
    if with_f1:
        fns["f1"] = lambda y, p: f1_score(y, p, zero_division=np.nan)
    return fns


def _level_label(level: Any) -> str:
    return " & ".join(str(v) for v in level) if isinstance(level, tuple) else str(level)


def _rate_gaps(values: Mapping[str, float | None]) -> tuple[float | None, float | None]:
    """(max − min, min / max) over the groups where the rate is defined; None with < 2 groups."""
    defined = [v for v in values.values() if v is not None]
    if len(defined) < 2:
        return None, None
    hi, lo = max(defined), min(defined)
    return hi - lo, (lo / hi if hi > 0 else None)


@dataclass(frozen=True)
class _Examples:
    """The examples of one column set that have a value in every column of it."""

    y: IntArray
    p: IntArray
    frame: Any  # pandas DataFrame of the sensitive columns
    labels: npt.NDArray[np.str_]  # each example's group label ("a & x")

    def features(self, rows: Any = None) -> Any:
        """Fairlearn's ``sensitive_features`` for all rows or a boolean selection of them."""
        frame = self.frame if rows is None else self.frame[rows].reset_index(drop=True)
        return frame if frame.shape[1] > 1 else frame[frame.columns[0]]


def _examples(
    y_true: IntArray,
    y_pred: IntArray,
    sensitive: Mapping[str, Sequence[str | None]],
    columns: Sequence[str],
    result: GroupResult,
) -> _Examples:
    import pandas as pd

    keep = np.array([all(sensitive[c][i] is not None for c in columns) for i in range(len(y_true))])
    if not keep.all():
        result.warnings.append(
            f"groups {result.key}: {int((~keep).sum())} examples with an empty "
            f"{'/'.join(columns)} value left out"
        )
    rows = np.flatnonzero(keep)
    frame = pd.DataFrame({c: [sensitive[c][int(i)] for i in rows] for c in columns})
    labels = np.array([" & ".join(str(v) for v in t) for t in frame.itertuples(index=False)])
    return _Examples(y_true[keep], y_pred[keep], frame, labels)


def _group_rows(
    ex: _Examples, columns: Sequence[str], min_group_size: int, result: GroupResult
) -> list[dict[str, Any]]:
    """Per-group counts and rates (Fairlearn MetricFrame); undefined rates null, with a warning."""
    from fairlearn.metrics import MetricFrame

    key, sf = result.key, ex.features()
    full = MetricFrame(
        metrics=_metric_functions(True), y_true=ex.y, y_pred=ex.p, sensitive_features=sf
    )
    counts = MetricFrame(
        metrics={
            "n": lambda a, b: len(a),
            "n_pos": lambda a, b: int(np.sum(a)),
            "n_neg": lambda a, b: int(np.sum(1 - a)),
        },
        y_true=ex.y,
        y_pred=ex.p,
        sensitive_features=sf,
    ).by_group
    table: list[dict[str, Any]] = []
    for level in full.by_group.index:
        label = _level_label(level)
        n, n_pos, n_neg = (int(counts.loc[level, k]) for k in ("n", "n_pos", "n_neg"))
        values = level if isinstance(level, tuple) else (level,)
        row: dict[str, Any] = {
            "group": dict(zip(columns, values, strict=True)),
            "label": label,
            "n": n,
            "n_positive": n_pos,
            "n_negative": n_neg,
        }
        row.update({m: finite_or_none(full.by_group.loc[level, m]) for m in RATES})
        if n_pos == 0:
            row["tpr"] = row["f1"] = None
            result.warnings.append(
                f"groups {key}={label!r}: no positive examples; TPR and F1 undefined"
            )
        if n_neg == 0:
            row["fpr"] = None
            result.warnings.append(f"groups {key}={label!r}: no negative examples; FPR undefined")
        row["in_gaps"] = n >= min_group_size
        if not row["in_gaps"]:
            result.warnings.append(
                f"groups {key}={label!r}: {n} examples (< min_group_size "
                f"{min_group_size}); reported, left out of gaps"
            )
        table.append(row)
    return table


def _counts(ex: _Examples, label: str) -> dict[str, int]:
    """The counts behind one group's rates: (successes, totals) of accuracy, selection, TPR, FPR."""
    in_group = ex.labels == label
    y, p = ex.y[in_group], ex.p[in_group]
    return {
        "n": int(y.size),
        "correct": int(np.sum(y == p)),
        "selected": int(np.sum(p)),
        "n_pos": int(np.sum(y)),
        "tp": int(np.sum(y * p)),
        "n_neg": int(np.sum(1 - y)),
        "fp": int(np.sum((1 - y) * p)),
    }


RATE_COUNTS = {  # rate -> (successes, totals) keys of _counts
    "accuracy": ("correct", "n"),
    "selection_rate": ("selected", "n"),
    "tpr": ("tp", "n_pos"),
    "fpr": ("fp", "n_neg"),
}


def _row_intervals(row: dict[str, Any], counts: dict[str, int]) -> dict[str, list[float | None]]:
    """Each rate's own 95% Wilson interval (statsmodels); an undefined rate has none."""
    from statsmodels.stats.proportion import proportion_confint

    out: dict[str, list[float | None]] = {}
    for rate, (hits, total) in RATE_COUNTS.items():
        if row[rate] is None or counts[total] == 0:
            out[rate] = [None, None]
            continue
        low, high = proportion_confint(counts[hits], counts[total], method="wilson")
        out[rate] = [float(low), float(high)]
    return out


def _box_gaps(
    name: str, families: list[tuple[list[int], list[int]]], values: tuple[float | None, ...]
) -> dict[str, Gap]:
    """``NAME_difference`` and ``NAME_ratio`` with intervals from simultaneous Wilson boxes over
    every rate in ``families``; with two families (TPR, FPR) the gap is the worse of the two:
    the larger difference, the smaller ratio."""
    boxes = wilson_boxes(families)
    diffs = [difference_bounds(b) for b in boxes]
    ratios = [ratio_bounds(b) for b in boxes]
    difference, ratio = values
    d_low, d_high = max(d[0] for d in diffs), max(d[1] for d in diffs)
    r_low, r_high = min(r[0] for r in ratios), min(r[1] for r in ratios)
    return {
        f"{name}_difference": (
            difference,
            *((d_low, d_high) if difference is not None else (None, None)),
        ),
        f"{name}_ratio": (ratio, *((r_low, r_high) if ratio is not None else (None, None))),
    }


def _family(
    compared: list[dict[str, Any]], counts: Mapping[str, dict[str, int]], rate: str
) -> tuple[list[int], list[int]]:
    """(successes, totals) of ``rate`` over the compared groups where it is defined."""
    hits, total = RATE_COUNTS[rate]
    used = [r["label"] for r in compared if r[rate] is not None]
    return [counts[g][hits] for g in used], [counts[g][total] for g in used]


def _simple_gaps(
    ex: _Examples, sub: npt.NDArray[np.bool_], compared: list[dict[str, Any]]
) -> tuple[dict[str, Gap], int]:
    """Demographic-parity and accuracy gaps: values from Fairlearn's ``MetricFrame``, intervals
    from simultaneous Wilson boxes (``harness.bias.gap_intervals``); also puts each compared
    group's own rate intervals into its row (``ci``). Returns the gaps and the rates per gap."""
    from fairlearn.metrics import MetricFrame

    frame = MetricFrame(
        metrics=_metric_functions(False),
        y_true=ex.y[sub],
        y_pred=ex.p[sub],
        sensitive_features=ex.features(sub),
    )
    diff, ratio = frame.difference(), frame.ratio()
    counts = {r["label"]: _counts(ex, r["label"]) for r in compared}
    for row in compared:
        row["ci"] = _row_intervals(row, counts[row["label"]])
    gaps: dict[str, Gap] = {}
    for name, metric in SIMPLE_GAPS:
        values = (finite_or_none(diff[metric]), finite_or_none(ratio[metric]))
        gaps.update(_box_gaps(name, [_family(compared, counts, metric)], values))
    return gaps, len(compared)


def _equalized_odds(
    ex: _Examples, compared: list[dict[str, Any]], result: GroupResult
) -> tuple[dict[str, Gap], int]:
    """Equalized-odds difference and ratio over the rates defined in >= 2 compared groups; the
    interval is the worse-of-two range over simultaneous Wilson boxes of every TPR and FPR used."""
    tpr_d, tpr_r = _rate_gaps({r["label"]: r["tpr"] for r in compared})
    fpr_d, fpr_r = _rate_gaps({r["label"]: r["fpr"] for r in compared})
    eo_d = max((v for v in (tpr_d, fpr_d) if v is not None), default=None)
    eo_r = min((v for v in (tpr_r, fpr_r) if v is not None), default=None)
    if tpr_d is None or fpr_d is None:
        result.warnings.append(
            f"groups {result.key}: equalized odds uses only the rate defined in >= 2 groups"
        )
    counts = {r["label"]: _counts(ex, r["label"]) for r in compared}
    families = [
        fam
        for fam, gap in (
            (_family(compared, counts, "tpr"), tpr_d),
            (_family(compared, counts, "fpr"), fpr_d),
        )
        if gap is not None
    ]
    if not families:
        return {
            "equalized_odds_difference": (None, None, None),
            "equalized_odds_ratio": (None, None, None),
        }, 0
    return _box_gaps("equalized_odds", families, (eo_d, eo_r)), sum(len(f[1]) for f in families)


def _gap_metrics(
    key: str,
    gaps: Mapping[str, Gap],
    methods: Mapping[str, str | None],
    *,
    n: int,
    comparable: bool,
) -> list[Metric]:
    """One metric per gap; ``comparable`` is False when fewer than two groups were compared."""
    out = []
    for name, (value, low, high) in gaps.items():
        if name.startswith("equalized_odds"):
            kind = name.removeprefix("equalized_odds_")
            description = (
                f"Equalized odds {kind} (worst of TPR and FPR) between groups of {key}."
                if comparable
                else f"Equalized odds {kind}: undefined with fewer than two groups."
            )
        else:
            description = (
                f"{name.replace('_', ' ').capitalize()} between groups of {key} "
                "(positive class vs rest)."
            )
        method = methods.get(name) if low is not None else None
        out.append(
            Metric(
                name=f"groups.{key}.{name}",
                value=value,
                higher_is_better=name.endswith("ratio"),
                ci_low=low,
                ci_high=high,
                ci_method=method,
                n=n,
                description=description,
            )
        )
    return out


def group_metrics(
    *,
    y_true: IntArray,
    y_pred: IntArray,
    sensitive: Mapping[str, Sequence[str | None]],
    columns: Sequence[str],
    min_group_size: int,
) -> GroupResult:
    """Fairlearn group metrics for one column or the intersection of several (binary y)."""
    result = GroupResult(key="+".join(columns))
    key = result.key
    ex = _examples(y_true, y_pred, sensitive, columns, result)
    # Every example with a value may have lost its prediction: then there is no group at all.
    table = _group_rows(ex, columns, min_group_size, result) if ex.y.size else []
    compared = [r for r in table if r["in_gaps"]]
    names = [f"{g}_{k}" for g, _ in SIMPLE_GAPS for k in ("difference", "ratio")]
    names += ["equalized_odds_difference", "equalized_odds_ratio"]
    gaps: dict[str, Gap] = dict.fromkeys(names, (None, None, None))
    methods: dict[str, str | None] = dict.fromkeys(names)
    if len(compared) < 2:
        result.warnings.append(
            f"groups {key}: {len(compared)} group(s) large enough to compare; every gap "
            f"is undefined (null)"
        )
    else:
        sub = np.isin(ex.labels, [r["label"] for r in compared])
        simple, m = _simple_gaps(ex, sub, compared)
        gaps.update(simple)
        methods.update(dict.fromkeys(simple, method_note(m)))
        eo, m = _equalized_odds(ex, compared, result)
        gaps.update(eo)
        methods.update(dict.fromkeys(eo, method_note(m)))
    n_used = sum(r["n"] for r in compared)
    result.metrics = _gap_metrics(key, gaps, methods, n=n_used, comparable=len(compared) >= 2)
    result.metrics.append(
        Metric(name=f"groups.{key}.n_groups_compared", value=len(compared), higher_is_better=None)
    )
    result.details = {
        "columns": list(columns),
        "compared": [r["label"] for r in compared],
        "excluded_small": [r["label"] for r in table if not r["in_gaps"]],
        "min_group_size": min_group_size,
        "by_group": table,
    }
    return result
