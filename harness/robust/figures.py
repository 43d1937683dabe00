"""Figures of one robustness recipe's per-example rows: rates with Wilson intervals, outcome
counts, perturbation size, query and time cost, and validity (sentence similarity).

Pure functions of the rows the robustness suite writes, so the suite, a merged sweep shard or a
later re-analysis compute the same figures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from harness.records import Metric, proportion_metric
from harness.robust.recipes import RECIPES, REFERENCE_ANGULAR_SIMILARITY
from harness.stats import Interval, order_statistic_ci, t_mean_ci


def recipe_figures(recipe: str, rows: list[dict[str, Any]]) -> tuple[list[Metric], dict[str, Any]]:
    """Metrics and a summary table entry for one recipe's rows."""
    counts = {
        k: sum(r["result"] == k for r in rows)
        for k in ("succeeded", "failed", "skipped", "timed_out")
    }
    spec = RECIPES[recipe]
    threshold = spec.similarity_threshold or REFERENCE_ANGULAR_SIMILARITY
    sims = np.array(
        [r["angular_similarity"] for r in rows if r.get("angular_similarity") is not None],
        dtype=float,
    )
    m = _rate_metrics(recipe, counts, len(rows))
    m += _cost_metrics(recipe, rows)
    own = "the recipe's own threshold" if spec.similarity_threshold else "reference threshold"
    m += _similarity_metrics(recipe, sims, threshold, own)
    validity = validity_summary(rows)
    if validity is not None:
        m += _validity_metrics(recipe, validity, counts)
    summary = {
        **counts,
        **({"validity": validity} if validity is not None else {}),
        "n": len(rows),
        "similarity_threshold": threshold,
        "similarity_quantiles": [float(q) for q in np.quantile(sims, [0, 0.25, 0.5, 0.75, 1])]
        if sims.size
        else None,
    }
    return m, summary


def _rate_metrics(recipe: str, counts: dict[str, int], n: int) -> list[Metric]:
    """The three rates (Wilson intervals) and the outcome counts."""
    attacked = counts["succeeded"] + counts["failed"] + counts["timed_out"]
    m = [
        proportion_metric(
            f"{recipe}.clean_accuracy",
            attacked,
            n,
            higher=True,
            description="Accuracy on the attacked sample before the attack",
        ),
        proportion_metric(
            f"{recipe}.accuracy_under_attack",
            counts["failed"] + counts["timed_out"],
            n,
            higher=True,
            description="Share of the sample still classified correctly after the attack",
        ),
        proportion_metric(
            f"{recipe}.attack_success_rate",
            counts["succeeded"],
            attacked,
            higher=False,
            description="Successful attacks among correctly classified examples",
        ),
    ]
    m += [
        Metric(
            name=f"{recipe}.{k}",
            value=float(v),
            higher_is_better=None,
            n=n,
            unit="examples",
            description=f"Examples whose attack {k.replace('_', ' ')}",
        )
        for k, v in counts.items()
    ]
    return m


def _cost_metrics(recipe: str, rows: list[dict[str, Any]]) -> list[Metric]:
    """Perturbation size (mean with t interval, median with order-statistic interval), queries
    and seconds per example (means with t intervals)."""
    pct = np.array(
        [r["words_perturbed_pct"] for r in rows if r["words_perturbed_pct"] is not None],
        dtype=float,
    )
    queries = np.array([r["queries"] for r in rows if r["result"] != "skipped"], dtype=float)
    seconds = np.array([r["seconds"] for r in rows], dtype=float)
    figures: list[tuple[str, Any, Callable[[Any], Any], Interval, bool | None, str, str]] = [
        # name, values, statistic, interval, higher is better, unit, description
        ("words_perturbed_pct.mean", pct, np.mean, t_mean_ci(pct), None, "%",
         "Mean share of words changed in successful attacks"),
        ("words_perturbed_pct.median", pct, np.median, order_statistic_ci(np.sort(pct), 0.5), None,
         "%", "Median share of words changed in successful attacks"),
        ("queries.mean", queries, np.mean, t_mean_ci(queries), None, "queries",
         "Mean model queries per attacked example"),
        ("seconds_per_example.mean", seconds, np.mean, t_mean_ci(seconds), False, "s",
         "Mean wall-clock seconds per example (one worker)"),
    ]
    return [
        Metric.with_interval(
            name=f"{recipe}.{name}", value=float(stat(values)) if values.size else None,
            higher_is_better=higher, interval=ci, n=int(values.size), unit=unit, description=desc,
        )
        for name, values, stat, ci, higher, unit, desc in figures
    ]


def _similarity_metrics(recipe: str, sims: Any, threshold: float, own: str) -> list[Metric]:
    """Validity of the successful attacks: angular USE-m similarity to their originals."""
    below = int(np.sum(sims < threshold))
    return [
        Metric(
            name=f"{recipe}.similarity.mean",
            value=float(sims.mean()) if sims.size else None,
            higher_is_better=True,
            n=int(sims.size),
            description="Mean angular USE-m similarity of successful adversarial texts "
            "to their originals",
        ),
        Metric(
            name=f"{recipe}.similarity.p10",
            value=float(np.quantile(sims, 0.1)) if sims.size else None,
            higher_is_better=True,
            n=int(sims.size),
            description="10th percentile of that similarity",
        ),
        proportion_metric(
            f"{recipe}.similarity.share_below_threshold",
            below,
            int(sims.size),
            higher=False,
            description=f"Successful attacks below angular similarity {threshold:.3f} ({own})",
        ),
    ]


REJECTED_SHOWN = 20  # rejected examples kept in the summary for the report


def validity_summary(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Valid and rejected successes, rejections per check, and the first rejected examples
    (with why); None for rows written without validity checks."""
    if not any("valid_result" in r for r in rows):
        return None
    rejected = [r for r in rows if r.get("valid_result") == "rejected"]
    by_check: dict[str, int] = {}
    for r in rejected:
        for name in r["validity"]["rejected_by"]:
            by_check[name] = by_check.get(name, 0) + 1
    return {
        "valid_succeeded": sum(r.get("valid_result") == "succeeded" for r in rows),
        "rejected": len(rejected),
        "rejections_by_check": dict(sorted(by_check.items())),
        "rejected_examples": [
            {
                "id": r["id"],
                "original_text": r["original_text"],
                "perturbed_text": r["perturbed_text"],
                "rejected_by": r["validity"]["rejected_by"],
                "checks": {k: r["validity"]["checks"][k] for k in r["validity"]["rejected_by"]},
            }
            for r in rejected[:REJECTED_SHOWN]
        ],
    }


def _validity_metrics(recipe: str, validity: dict[str, Any], counts: dict[str, int]) -> list[Metric]:
    """Valid attack success rate (Wilson interval) and rejection counts."""
    attacked = counts["succeeded"] + counts["failed"] + counts["timed_out"]
    m = [
        proportion_metric(
            f"{recipe}.valid_attack_success_rate",
            validity["valid_succeeded"],
            attacked,
            higher=False,
            description="Successful attacks that pass every validity check, among correctly "
            "classified examples",
        ),
        Metric(
            name=f"{recipe}.rejected", value=float(validity["rejected"]), higher_is_better=None,
            n=counts["succeeded"], unit="examples",
            description="Successful attacks rejected by a validity check",
        ),
    ]
    m += [
        Metric(
            name=f"{recipe}.rejected.{check}", value=float(n), higher_is_better=None,
            n=counts["succeeded"], unit="examples",
            description=f"Successful attacks failing the {check} check",
        )
        for check, n in validity["rejections_by_check"].items()
    ]
    return m
