"""Group metrics on the dataset's sensitive columns, computed by Fairlearn's ``MetricFrame``.

Every figure is "positive class vs the rest": ``y_true`` and ``y_pred`` are 1 where the gold /
predicted label is the positive label. Per group: accuracy, selection rate, TPR, FPR, F1; gaps:
demographic parity difference / ratio (selection rate) and equalized odds difference / ratio
(worst of TPR and FPR). Per-group and DP intervals are Fairlearn's own bootstrap (``n_boot``,
``ci_quantiles``); Fairlearn has none for equalized odds, so that interval is a percentile
bootstrap of the same statistic through ``harness.stats.bootstrap_ci``.

Fairlearn reports 0 for the TPR of a group without positives (and the FPR of one without
negatives); we report those as undefined (null) with a warning, and such a group does not take
part in that rate's gap. Groups smaller than ``min_group_size`` are reported but left out of the
gaps. Fewer than two groups left: every gap is undefined (null), never 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.errors import DataError
from harness.records import Metric
from harness.stats import bootstrap_ci

MSG_NO_COLUMN = (
    "bias.sensitive_columns: column {column!r} is not a group column of the dataset "
    "(group columns: {present}); declare it under dataset.columns.groups"
)
MSG_ALL_NULL = "bias: sensitive column {column!r} has no values on the evaluation split (all empty)"
CI_QUANTILES = [0.025, 0.975]
RATES = ("accuracy", "selection_rate", "tpr", "fpr", "f1")

IntArray = npt.NDArray[np.int64]


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


def _eo_statistic(y: IntArray, p: IntArray, codes: IntArray, n_groups: int, ratio: bool) -> Any:
    """Equalized-odds difference (or ratio) on resampled indices; NaN when a rate is undefined."""

    def stat(idx: IntArray) -> float:
        yy, pp, cc = y[idx], p[idx], codes[idx]
        pos = np.bincount(cc, weights=yy, minlength=n_groups)
        neg = np.bincount(cc, weights=1 - yy, minlength=n_groups)
        if (pos == 0).any() or (neg == 0).any():
            return float("nan")
        tpr = np.bincount(cc, weights=yy * pp, minlength=n_groups) / pos
        fpr = np.bincount(cc, weights=(1 - yy) * pp, minlength=n_groups) / neg
        if ratio:
            r = [
                lo / hi if hi > 0 else float("nan")
                for lo, hi in ((tpr.min(), tpr.max()), (fpr.min(), fpr.max()))
            ]
            return float(min(r))
        return float(max(tpr.max() - tpr.min(), fpr.max() - fpr.min()))

    return stat


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
    import pandas as pd
    from fairlearn.metrics import MetricFrame

    key = "+".join(columns)
    result = GroupResult(key=key)
    keep = np.array([all(sensitive[c][i] is not None for c in columns) for i in range(len(y_true))])
    if not keep.all():
        result.warnings.append(
            f"groups {key}: {int((~keep).sum())} examples with an empty "
            f"{'/'.join(columns)} value left out"
        )
    y, p = y_true[keep], y_pred[keep]
    frame = pd.DataFrame({c: [sensitive[c][int(i)] for i in np.flatnonzero(keep)] for c in columns})
    sf: Any = frame if len(columns) > 1 else frame[columns[0]]
    row_labels = [" & ".join(str(v) for v in values) for values in frame.itertuples(index=False)]
    full = MetricFrame(metrics=_metric_functions(True), y_true=y, y_pred=p, sensitive_features=sf)
    counts = MetricFrame(
        metrics={
            "n": lambda a, b: len(a),
            "n_pos": lambda a, b: int(np.sum(a)),
            "n_neg": lambda a, b: int(np.sum(1 - a)),
        },
        y_true=y,
        y_pred=p,
        sensitive_features=sf,
    ).by_group
    table: list[dict[str, Any]] = []
    eligible: list[Any] = []
    for level in full.by_group.index:
        label = _level_label(level)
        n, n_pos, n_neg = (int(counts.loc[level, k]) for k in ("n", "n_pos", "n_neg"))
        row: dict[str, Any] = {
            "group": dict(
                zip(columns, level if isinstance(level, tuple) else (level,), strict=True)
            ),
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
        if row["in_gaps"]:
            eligible.append(level)
        else:
            result.warnings.append(
                f"groups {key}={label!r}: {n} examples (< min_group_size "
                f"{min_group_size}); reported, left out of gaps"
            )
        table.append(row)
    compared = [r for r in table if r["in_gaps"]]
    gaps: dict[
        str, tuple[float | None, float | None, float | None]
    ] = {}  # name -> (value, low, high)
    ci_method = f"Fairlearn MetricFrame bootstrap (n_boot={n_boot}, random_state={seed})"
    if len(compared) < 2:
        result.warnings.append(
            f"groups {key}: {len(compared)} group(s) large enough to compare; every gap "
            f"is undefined (null)"
        )
        for name in ("demographic_parity", "equalized_odds", "accuracy"):
            gaps[f"{name}_difference"] = gaps[f"{name}_ratio"] = (None, None, None)
    else:
        labels = {r["label"] for r in compared}
        sub = np.array([lab in labels for lab in row_labels])
        sub_sf: Any = frame[sub].reset_index(drop=True)
        sub_sf = sub_sf if len(columns) > 1 else sub_sf[columns[0]]
        boot = MetricFrame(
            metrics=_metric_functions(False),
            y_true=y[sub],
            y_pred=p[sub],
            sensitive_features=sub_sf,
            n_boot=n_boot if n_boot > 0 else None,
            ci_quantiles=CI_QUANTILES if n_boot > 0 else None,
            random_state=seed if n_boot > 0 else None,
        )
        diff, ratio = boot.difference(), boot.ratio()
        dci = boot.difference_ci() if n_boot > 0 else None
        rci = boot.ratio_ci() if n_boot > 0 else None

        def ci(which: Any, metric: str) -> tuple[float | None, float | None]:
            return (
                (None, None) if which is None else (_num(which[0][metric]), _num(which[1][metric]))
            )

        for name, metric in (("demographic_parity", "selection_rate"), ("accuracy", "accuracy")):
            gaps[f"{name}_difference"] = (_num(diff[metric]), *ci(dci, metric))
            gaps[f"{name}_ratio"] = (_num(ratio[metric]), *ci(rci, metric))
        tpr_d, tpr_r = _rate_gaps({r["label"]: r["tpr"] for r in compared})
        fpr_d, fpr_r = _rate_gaps({r["label"]: r["fpr"] for r in compared})
        eo_d = (
            None
            if tpr_d is None and fpr_d is None
            else max(v for v in (tpr_d, fpr_d) if v is not None)
        )
        eo_r = (
            None
            if tpr_r is None and fpr_r is None
            else min(v for v in (tpr_r, fpr_r) if v is not None)
        )
        if tpr_d is None or fpr_d is None:
            result.warnings.append(
                f"groups {key}: equalized odds uses only the rate defined in >= 2 groups"
            )
        codes = np.unique(np.array(row_labels)[sub], return_inverse=True)[1].astype(np.int64)
        eo_method = ""
        for name, value, is_ratio in (("difference", eo_d, False), ("ratio", eo_r, True)):
            interval = bootstrap_ci(
                _eo_statistic(y[sub], p[sub], codes, len(compared), is_ratio),
                int(sub.sum()),
                n_boot=n_boot,
                seed=seed,
            )
            gaps[f"equalized_odds_{name}"] = (value, interval.low, interval.high)
            eo_method = interval.method
        for name in ("difference", "ratio"):
            result.metrics.append(
                Metric(
                    name=f"groups.{key}.equalized_odds_{name}",
                    value=gaps[f"equalized_odds_{name}"][0],
                    higher_is_better=name == "ratio",
                    ci_low=gaps[f"equalized_odds_{name}"][1],
                    ci_high=gaps[f"equalized_odds_{name}"][2],
                    ci_method=eo_method,
                    n=int(sub.sum()),
                    description=f"Equalized odds {name} (worst of TPR and FPR) between "
                    f"groups of {key}.",
                )
            )
        if n_boot > 0:
            lows, highs = boot.by_group_ci
            for row in compared:
                level = next(lv for lv in boot.by_group.index if _level_label(lv) == row["label"])
                row["ci"] = {
                    m: [_num(lows.loc[level, m]), _num(highs.loc[level, m])]
                    for m in ("accuracy", "selection_rate", "tpr", "fpr")
                }
    n_used = sum(r["n"] for r in compared)
    for name in (
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "accuracy_difference",
        "accuracy_ratio",
    ):
        value, low, high = gaps[name]
        result.metrics.append(
            Metric(
                name=f"groups.{key}.{name}",
                value=value,
                higher_is_better=name.endswith("ratio"),
                ci_low=low,
                ci_high=high,
                ci_method=ci_method if low is not None else None,
                n=n_used,
                description=f"{name.replace('_', ' ').capitalize()} between groups of {key} "
                "(positive class vs rest).",
            )
        )
    if len(compared) < 2:
        for name in ("difference", "ratio"):
            result.metrics.append(
                Metric(
                    name=f"groups.{key}.equalized_odds_{name}",
                    value=None,
                    higher_is_better=name == "ratio",
                    n=n_used,
                    description=f"Equalized odds {name}: undefined with fewer than two groups.",
                )
            )
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
