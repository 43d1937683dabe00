"""Selection rates and impact ratios per category, as NYC Local Law 144's bias audits ask.

LL144's rules (6 RCNY §5-301) ask, for each category of sex, of race/ethnicity and of their
intersections: the number assessed, the selection rate (share given the favourable outcome —
here: predicted as the positive label), the *impact ratio* (the category's rate divided by the
rate of the most selected category), and, for a tool that scores, the scoring rate (share
scoring above the median score of everyone assessed) with its impact ratio. People whose
category is unknown are counted, not guessed; a category under 2% of the assessed may be left
out of the impact ratios, but its counts and rate must still be listed with the reason.

What this module adds to the letter of the rules, and where it departs:

* every rate has a Wilson 95% interval and every ratio a Koopman asymptotic score interval for
  the ratio of two independent proportions (checked against statsmodels' ``method='score',
  correction=False``); the reference category is taken as fixed, although it was chosen as the
  most selected, so the intervals do not account for that choice;
* the four-fifths flag is decided on exact counts (``x_g·n_ref < 0.8·n_g·x_ref``), never on a
  rounded float, so a ratio of exactly 0.8 is not flagged;
* a ratio is undefined (null) when the most selected category has a rate of 0 (no one selected).

Pure functions of plain values (no pandas, no model): the bias suite calls ``impact_tables``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.records import Metric
from harness.stats import Interval, wilson_interval

FOUR_FIFTHS = Fraction(4, 5)
# LL144 lets an auditor leave categories under 2% of the data out of the impact ratios. A constant,
# not a suite parameter: a new parameter would make every earlier bias record incomparable.
LL144_MIN_SHARE = 0.02
RATIO_METHOD = "Koopman asymptotic score (ratio of independent proportions)"
RATE_METHOD = "wilson"
# Message templates (asserted by tests).
MSG_EXCLUDED = (
    "{share:.2%} of the {n} assessed (< {limit:.0%}): excluded from impact ratios as LL144 "
    "(6 RCNY §5-301(d)) allows; counts and rate listed"
)
MSG_NO_SELECTION = "no category with a {rate} above 0: every impact ratio is undefined"
MSG_UNKNOWN = "{key}: {n} assessed example(s) with an unknown category (empty {columns})"
RATES = ("selection", "scoring")
IMPACT_DEPARTURE = (
    "impact ratios (LL144): the reference category is the most selected one, but its choice is "
    "not accounted for in the Koopman intervals (they take it as fixed); the four-fifths flag "
    "reads the point estimate, as the rule does"
)


# ------------------------------------------------------------------ the ratio interval


def _score_statistic(x1: int, n1: int, x0: int, n0: int, ratio: float) -> float:
    """Koopman's score statistic for H0: p1 = ratio · p0 (restricted MLE of Miettinen and
    Nurminen, without their n/(n-1) variance correction)."""
    n, x = n1 + n0, x1 + x0
    a = n * ratio
    b = -(n1 * ratio + x1 + n0 + x0 * ratio)
    disc = max(b * b - 4 * a * x, 0.0)
    p0 = (-b - math.sqrt(disc)) / (2 * a)
    p0 = min(max(p0, 0.0), 1.0)
    p1 = min(p0 * ratio, 1.0)
    var = p1 * (1 - p1) / n1 + ratio * ratio * p0 * (1 - p0) / n0
    diff = x1 / n1 - ratio * x0 / n0
    if var <= 0.0:
        return 0.0 if abs(diff) < 1e-15 else math.copysign(math.inf, diff)
    return diff / math.sqrt(var)


def ratio_interval(x1: int, n1: int, x0: int, n0: int, *, confidence: float = 0.95) -> Interval:
    """Koopman score interval for (x1/n1) / (x0/n0): the ratios the score test does not reject.

    The statistic falls as the ratio grows, so each bound is one root, found on the log scale.
    Undefined when x0 is 0 (no reference rate) or either sample is empty.
    """
    if n1 <= 0 or n0 <= 0 or x0 <= 0:
        return Interval(None, None, RATIO_METHOD)
    from scipy.optimize import brentq
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2))
    point = (x1 / n1) / (x0 / n0)

    def f(log_ratio: float, target: float) -> float:
        return _score_statistic(x1, n1, x0, n0, math.exp(log_ratio)) - target

    lo_end, hi_end = math.log(1e-12), math.log(1e12)
    if x1 == 0:
        low = 0.0
    else:
        centre = math.log(point)
        low = math.exp(brentq(f, lo_end, centre, args=(z,), xtol=1e-13)) if f(lo_end, z) > 0 else 0.0
    start = math.log(point) if x1 else lo_end
    high = math.exp(brentq(f, start, hi_end, args=(-z,), xtol=1e-13)) if f(hi_end, -z) < 0 else math.inf
    return Interval(min(low, point), max(high, point) if math.isfinite(high) else None, RATIO_METHOD)


# ------------------------------------------------------------------ the tables


@dataclass(frozen=True)
class ImpactInput:
    """The assessed examples: the favourable outcome and the score, and their categories."""

    selected: npt.NDArray[np.bool_]  # predicted as the positive label
    scores: npt.NDArray[np.float64]  # probability of the positive label
    groups: Mapping[str, Sequence[str | None]]  # column -> value per example (None: unknown)


@dataclass
class ImpactResult:
    metrics: list[Metric] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _category_rows(
    values: list[tuple[str, ...] | None], outcome: npt.NDArray[np.bool_], columns: Sequence[str],
    min_share: float,
) -> list[dict[str, Any]]:
    """Counts, rates and ratios of each category of one column set, for one outcome."""
    total = len(values)
    cats = sorted({v for v in values if v is not None})
    rows: list[dict[str, Any]] = []
    for cat in cats:
        mask = np.array([v == cat for v in values], dtype=bool)
        n, k = int(mask.sum()), int(outcome[mask].sum())
        ci = wilson_interval(k, n)
        share = n / total if total else 0.0
        rows.append({
            "category": " & ".join(cat),
            "values": dict(zip(columns, cat, strict=True)),
            "n": n,
            "share": share,
            "selected": k,
            "rate": k / n,
            "rate_ci": [ci.low, ci.high],
            "excluded_small": share < min_share,
        })  # fmt: skip
    included = [r for r in rows if not r["excluded_small"]]
    ref = max(included, key=lambda r: (Fraction(r["selected"], r["n"]), -r["n"]), default=None)
    for row in rows:
        row.update(impact_ratio=None, ratio_ci=[None, None], below_four_fifths=None, reference=False)
        if row["excluded_small"] or ref is None or ref["selected"] == 0:
            continue
        exact = Fraction(row["selected"] * ref["n"], row["n"] * ref["selected"])
        ci = ratio_interval(row["selected"], row["n"], ref["selected"], ref["n"])
        row.update(
            impact_ratio=float(exact),
            ratio_ci=[ci.low, ci.high],
            below_four_fifths=exact < FOUR_FIFTHS,
            reference=row is ref,
        )
    return rows


def _summary_metrics(key: str, rate: str, rows: list[dict[str, Any]], n_known: int) -> list[Metric]:
    """The smallest impact ratio (with its category's interval) and the count below 4/5."""
    prefix = f"impact.{key}" + ("" if rate == "selection" else f".{rate}")
    ratios = [r for r in rows if r["impact_ratio"] is not None]
    low = min(ratios, key=lambda r: (r["impact_ratio"], r["category"]), default=None)
    return [
        Metric(
            name=f"{prefix}.min_impact_ratio",
            value=None if low is None else low["impact_ratio"],
            higher_is_better=True,
            ci_low=None if low is None else low["ratio_ci"][0],
            ci_high=None if low is None else low["ratio_ci"][1],
            ci_method=None if low is None or low["ratio_ci"][0] is None else RATIO_METHOD,
            n=n_known,
            description=f"Smallest {rate}-rate impact ratio among the categories of {key} "
            f"(category {low['category'] if low else 'none'}; 1 = the most selected).",
        ),
        Metric(
            name=f"{prefix}.n_below_four_fifths",
            value=sum(1 for r in ratios if r["below_four_fifths"]) if ratios else None,
            higher_is_better=False,
            n=len(ratios),
            description=f"Categories of {key} whose {rate}-rate impact ratio is below 4/5.",
        ),
    ]


def impact_table(data: ImpactInput, columns: Sequence[str], min_share: float) -> ImpactResult:
    """Selection- and scoring-rate tables for one column, or the intersection of several."""
    key = "+".join(columns)
    values: list[tuple[str, ...] | None] = []
    for i in range(len(data.selected)):
        cat = tuple(data.groups[c][i] for c in columns)
        values.append(None if any(v is None for v in cat) else tuple(str(v) for v in cat))
    n_unknown = sum(1 for v in values if v is None)
    result = ImpactResult()
    if n_unknown:
        result.warnings.append(MSG_UNKNOWN.format(key=key, n=n_unknown, columns="/".join(columns)))
    median = float(np.median(data.scores)) if len(data.scores) else math.nan
    outcomes = {"selection": data.selected, "scoring": data.scores > median}
    known = [v for v in values if v is not None]
    table: dict[str, Any] = {
        "key": key, "columns": list(columns), "intersectional": len(columns) > 1,
        "n_assessed": len(values), "n_unknown": n_unknown, "score_median": median,
    }  # fmt: skip
    for rate in RATES:
        rows = _category_rows(values, outcomes[rate], columns, min_share)
        table[rate] = rows
        if rows and all(r["impact_ratio"] is None for r in rows if not r["excluded_small"]):
            result.warnings.append(f"impact {key}: " + MSG_NO_SELECTION.format(rate=f"{rate} rate"))
        result.metrics += _summary_metrics(key, rate, rows, len(known))
    for row in table["selection"] + table["scoring"]:
        if row["excluded_small"]:
            row["exclusion_reason"] = MSG_EXCLUDED.format(
                share=row["share"], n=len(values), limit=min_share
            )
    result.metrics.append(
        Metric(
            name=f"impact.{key}.n_unknown", value=n_unknown, higher_is_better=None, n=len(values),
            description=f"Assessed examples whose {'/'.join(columns)} category is unknown (empty).",
        )
    )
    result.details = table
    return result


def impact_tables(
    data: ImpactInput, columns: Sequence[str], *, intersectional: bool, min_share: float
) -> ImpactResult:
    """Each column alone, then (with several columns and ``intersectional``) all of them."""
    sets = [[c] for c in columns] + ([list(columns)] if intersectional and len(columns) > 1 else [])
    out = ImpactResult(details={
        "positive_label_is_selection": True, "four_fifths": float(FOUR_FIFTHS),
        "min_share": min_share, "rate_ci_method": RATE_METHOD, "ratio_ci_method": RATIO_METHOD,
        "tables": [],
    })  # fmt: skip
    for cols in sets:
        one = impact_table(data, cols, min_share)
        out.metrics += one.metrics
        out.warnings += one.warnings
        out.details["tables"].append(one.details)
    return out


def member_rows(
    ids: Sequence[str], data: ImpactInput, columns: Sequence[str]
) -> list[dict[str, Any]]:
    """One per-example row per assessed example: its categories and outcome (the report's
    example explorer reads group membership from them)."""
    return [
        {
            "id": f"member:{ident}",
            "kind": "member",
            "example_id": ident,
            "groups": {c: data.groups[c][i] for c in columns},
            "selected": bool(data.selected[i]),
            "score": float(data.scores[i]),
        }
        for i, ident in enumerate(ids)
    ]
