"""Group metrics on the dataset's sensitive columns, computed by Fairlearn's ``MetricFrame``.

Every figure is "positive class vs the rest": ``y_true`` and ``y_pred`` are 1 where the gold /
predicted label is the positive label. Per group: accuracy, selection rate, TPR, FPR, F1; gaps:
demographic parity difference / ratio (selection rate) and equalized odds difference / ratio
(worst of TPR and FPR). Per-group and DP intervals are Fairlearn's own bootstrap (``n_boot``,
``ci_quantiles``); Fairlearn has none for equalized odds, so that interval is a stratified
percentile bootstrap that resamples within group × label cells (``harness.bias.resample``):
every resample keeps the cells the point estimate used, so the interval is defined whenever
the point estimate is.

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

from harness.bias.resample import (
    equalized_odds_statistic,
    group_label_cells,
    stratified_bootstrap_ci,
)
from harness.errors import DataError
from harness.records import Metric

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


def _num(value: Any) -> float | None:
    v = float(value)
    return v if np.isfinite(v) else None


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
        row.update({m: _num(full.by_group.loc[level, m]) for m in RATES})
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


def _fairlearn_gaps(
    ex: _Examples,
    sub: npt.NDArray[np.bool_],
    compared: list[dict[str, Any]],
    n_boot: int,
    seed: int,
) -> dict[str, Gap]:
    """Demographic-parity and accuracy gaps with Fairlearn's bootstrap intervals; also puts
    each compared group's rate intervals into its row (``ci``)."""
    from fairlearn.metrics import MetricFrame

    boot = MetricFrame(
        metrics=_metric_functions(False),
        y_true=ex.y[sub],
        y_pred=ex.p[sub],
        sensitive_features=ex.features(sub),
        n_boot=n_boot if n_boot > 0 else None,
        ci_quantiles=CI_QUANTILES if n_boot > 0 else None,
        random_state=seed if n_boot > 0 else None,
    )
    diff, ratio = boot.difference(), boot.ratio()
    dci = boot.difference_ci() if n_boot > 0 else None
    rci = boot.ratio_ci() if n_boot > 0 else None

    def ci(which: Any, metric: str) -> tuple[float | None, float | None]:
        return (None, None) if which is None else (_num(which[0][metric]), _num(which[1][metric]))

    gaps: dict[str, Gap] = {}
    for name, metric in SIMPLE_GAPS:
        gaps[f"{name}_difference"] = (_num(diff[metric]), *ci(dci, metric))
        gaps[f"{name}_ratio"] = (_num(ratio[metric]), *ci(rci, metric))
    if n_boot > 0:
        lows, highs = boot.by_group_ci
        for row in compared:
            level = next(lv for lv in boot.by_group.index if _level_label(lv) == row["label"])
            # An undefined rate (no positives / negatives) has no interval either.
            row["ci"] = {
                m: [_num(lows.loc[level, m]), _num(highs.loc[level, m])]
                if row[m] is not None
                else [None, None]
                for m in ("accuracy", "selection_rate", "tpr", "fpr")
            }
    return gaps


def _equalized_odds(
    ex: _Examples,
    sub: npt.NDArray[np.bool_],
    compared: list[dict[str, Any]],
    n_boot: int,
    seed: int,
    result: GroupResult,
) -> tuple[dict[str, Gap], str]:
    """Equalized-odds difference and ratio over the rates defined in >= 2 compared groups, with
    stratified-bootstrap intervals (group × label cells) over the same groups and rates."""
    tpr_d, tpr_r = _rate_gaps({r["label"]: r["tpr"] for r in compared})
    fpr_d, fpr_r = _rate_gaps({r["label"]: r["fpr"] for r in compared})
    eo_d = max((v for v in (tpr_d, fpr_d) if v is not None), default=None)
    eo_r = min((v for v in (tpr_r, fpr_r) if v is not None), default=None)
    if tpr_d is None or fpr_d is None:
        result.warnings.append(
            f"groups {result.key}: equalized odds uses only the rate defined in >= 2 groups"
        )
    names, inverse = np.unique(ex.labels[sub], return_inverse=True)
    codes = inverse.astype(np.int64)
    by_label = {r["label"]: r for r in compared}
    tpr_groups = np.array([by_label[str(g)]["tpr"] is not None for g in names])
    fpr_groups = np.array([by_label[str(g)]["fpr"] is not None for g in names])
    y, p = ex.y[sub], ex.p[sub]
    cells = group_label_cells(codes, y)
    gaps: dict[str, Gap] = {}
    method = ""
    for name, value, is_ratio in (("difference", eo_d, False), ("ratio", eo_r, True)):
        stat = equalized_odds_statistic(
            y, p, codes, tpr_groups=tpr_groups, fpr_groups=fpr_groups, ratio=is_ratio
        )
        interval = stratified_bootstrap_ci(stat, cells, n_boot=n_boot, seed=seed)
        low, high = (None, None) if value is None else (interval.low, interval.high)
        gaps[f"equalized_odds_{name}"] = (value, low, high)
        method = interval.method
    return gaps, method


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
    n_boot: int,
    seed: int,
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
    fairlearn_ci = f"Fairlearn MetricFrame bootstrap (n_boot={n_boot}, random_state={seed})"
    methods: dict[str, str | None] = dict.fromkeys(names, fairlearn_ci)
    if len(compared) < 2:
        result.warnings.append(
            f"groups {key}: {len(compared)} group(s) large enough to compare; every gap "
            f"is undefined (null)"
        )
    else:
        sub = np.isin(ex.labels, [r["label"] for r in compared])
        gaps.update(_fairlearn_gaps(ex, sub, compared, n_boot, seed))
        eo, eo_method = _equalized_odds(ex, sub, compared, n_boot, seed, result)
        gaps.update(eo)
        methods.update(dict.fromkeys(eo, eo_method))
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
