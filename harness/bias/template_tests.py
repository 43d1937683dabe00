"""Template tests: per-group positive rate and mean score, gaps, permutation tests, and
counterfactual token fairness (Garg et al. 2019) over templates x identity fillers.

For one filler category the instances are every template filled with every filler. Group
figures come from Fairlearn's ``MetricFrame`` with the filler's group as the sensitive feature
(``y_pred`` = predicted positive, ``y_true`` carries the positive-class score, since templates have
no gold label). Significance is tested on template-centred scores (score minus the template's
mean over all fillers of the category), which removes what the template itself contributes, so
the permutation test (``harness.stats.permutation_test``) compares fillers only:

* per category: "no difference between groups" (statistic: max − min group mean);
* per pair of groups: "no difference between these two", Holm-adjusted over the category's pairs.

Two groups *differ* when the pair's Holm-adjusted p is below ``alpha`` and their mean scores are
at least ``min_gap`` apart (a deterministic model makes tiny differences "significant"; an
auditor needs both statistical and practical significance). A group is *flagged* when it differs
from more than half of the other groups: it stands out, rather than merely sitting next to one
group that does. ``gap_to_others`` is its mean score minus the median of the other groups' means.

Intervals of gaps and group figures resample templates (a cluster bootstrap through
``harness.stats.bootstrap_ci``): the instances of one template are correlated, so resampling
instances would give intervals that are too narrow.

Token fairness: per template, the largest |Δp| between two fillers of the category (max − min
score) and whether the predicted label flips between fillers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.bias.fillers import FillerCategory, normalise_filler
from harness.bias.templates import Template
from harness.records import Metric
from harness.stats import Interval, bootstrap_ci, holm, permutation_test, wilson_interval


@dataclass(frozen=True)
class Instance:
    id: str
    template: str
    category: str
    group: str
    filler: str
    text: str


@dataclass(frozen=True)
class ProbeSettings:
    n_boot: int
    n_perm: int
    alpha: float
    min_gap: float
    seed: int
    top_k: int


def build_instances(templates: Sequence[Template], category: FillerCategory) -> list[Instance]:
    return [
        Instance(
            id=f"tpl:{category.name}:{t.id}:{normalise_filler(filler)}",
            template=t.id,
            category=category.name,
            group=group,
            filler=filler,
            text=t.fill(filler),
        )
        for t in templates
        for group, filler in category.fillers()
    ]


def _num(value: Any) -> float | None:
    v = float(value)
    return v if np.isfinite(v) else None


def _mean_score(y_true: Any, y_pred: Any) -> float:
    return float(np.mean(y_true))


def _frame(scores: Any, positive: Any, sensitive: Any) -> Any:
    from fairlearn.metrics import MetricFrame, selection_rate

    return MetricFrame(
        metrics={"positive_rate": selection_rate, "mean_score": _mean_score},
        y_true=scores,
        y_pred=positive,
        sensitive_features=sensitive,
    )


@dataclass(frozen=True)
class _Tables:
    """Per (template, group) instance counts, positive predictions and score sums: the cluster
    bootstrap resamples templates (rows) and recomputes group figures from these sums."""

    count: Any
    positive: Any
    score: Any

    @classmethod
    def build(cls, tmpl: Any, codes: Any, scores: Any, positive: Any, n_groups: int) -> _Tables:
        n_t = int(tmpl.max()) + 1
        shape = (n_t, n_groups)
        count, pos, score = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        np.add.at(count, (tmpl, codes), 1.0)
        np.add.at(pos, (tmpl, codes), positive)
        np.add.at(score, (tmpl, codes), scores)
        return cls(count, pos, score)

    def rates(self, idx: Any, which: str) -> Any:
        total = self.count[idx].sum(axis=0)
        num = (self.positive if which == "positive_rate" else self.score)[idx].sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return num / total

    def gap_ci(self, which: str, s: ProbeSettings) -> Interval:
        def stat(idx: Any) -> float:
            r = self.rates(idx, which)
            return float(np.max(r) - np.min(r))

        return bootstrap_ci(stat, self.count.shape[0], n_boot=s.n_boot, seed=s.seed)

    def group_ci(self, which: str, k: int, s: ProbeSettings) -> Interval:
        return bootstrap_ci(
            lambda idx: float(self.rates(idx, which)[k]),
            self.count.shape[0],
            n_boot=s.n_boot,
            seed=s.seed,
        )


def _gap_metrics(
    prefix: str, mf: Any, tables: _Tables, n: int, s: ProbeSettings, n_groups: int
) -> list[Metric]:
    """DP difference and mean-score gap (max − min over groups), CI by resampling templates."""
    out = []
    for metric, name, what in (
        ("positive_rate", "demographic_parity_difference", "positive-prediction rate"),
        ("mean_score", "score_gap", "mean positive-class score"),
    ):
        if n_groups < 2:
            out.append(
                Metric(
                    name=f"{prefix}.{name}",
                    value=None,
                    higher_is_better=False,
                    n=n,
                    description=f"Undefined: fewer than two groups to compare ({what}).",
                )
            )
            continue
        ci = tables.gap_ci(metric, s)
        out.append(
            Metric(
                name=f"{prefix}.{name}",
                value=_num(mf.difference()[metric]),
                higher_is_better=False,
                ci_low=ci.low,
                ci_high=ci.high,
                ci_method=f"{ci.method}, resampling templates" if ci.low is not None else None,
                n=n,
                description=f"Largest difference between groups in {what} (Fairlearn MetricFrame).",
            )
        )
    return out


def analyse_category(
    category: FillerCategory,
    instances: Sequence[Instance],
    scores: Any,
    positive: Any,
    predicted: Sequence[str],
    s: ProbeSettings,
) -> tuple[list[Metric], dict[str, Any], list[str]]:
    """Metrics, details and warnings for one filler category (instances aligned with scores)."""
    import pandas as pd

    prefix = f"templates.{category.name}"
    warnings: list[str] = []
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=np.float64)
    groups = np.array([i.group for i in instances], dtype=object)
    names = list(category.groups)
    several = len(names) > 1
    n = len(instances)
    order = list(dict.fromkeys(i.template for i in instances))
    tmpl = np.array([order.index(i.template) for i in instances], dtype=np.int64)
    codes = np.array([names.index(g) for g in groups], dtype=np.int64)
    mf = _frame(scores, positive, pd.Series(groups, name=category.name))
    tables = _Tables.build(tmpl, codes, scores, positive, len(names))
    metrics = _gap_metrics(prefix, mf, tables, n, s, len(names))
    if not several:
        warnings.append(
            f"templates {category.name}: one group only ({names[0]!r}); gaps and tests undefined"
        )

    # Template-centred scores: the template's own effect removed, only the filler's left.
    resid = scores - (tables.score.sum(axis=1) / tables.count.sum(axis=1))[tmpl]
    p_category = permutation_test(resid, codes, n_perm=s.n_perm, seed=s.seed) if several else None
    means = np.array([scores[codes == k].mean() for k in range(len(names))])
    pairs = [(a, b) for a in range(len(names)) for b in range(a + 1, len(names))]
    p_pairs = [
        permutation_test(
            resid[(codes == a) | (codes == b)],
            (codes[(codes == a) | (codes == b)] == b).astype(np.int64),
            n_perm=s.n_perm,
            seed=s.seed + 1 + i,
        )
        for i, (a, b) in enumerate(pairs)
    ]
    p_adjusted = holm(p_pairs) if pairs else []
    if pairs and len(pairs) / (s.n_perm + 1) >= s.alpha:
        warnings.append(
            f"templates {category.name}: n_perm={s.n_perm} is too small for {len(pairs)} pairwise "
            f"tests: no pair can reach Holm p < {s.alpha}; raise n_perm above "
            f"{int(len(pairs) / s.alpha)}"
        )
    pair_rows: list[dict[str, Any]] = [
        {
            "groups": [names[a], names[b]],
            "gap": float(means[a] - means[b]),
            "p_value": p_pairs[i],
            "p_holm": p_adjusted[i],
            "different": bool(p_adjusted[i] < s.alpha and abs(means[a] - means[b]) >= s.min_gap),
        }
        for i, (a, b) in enumerate(pairs)
    ]
    table = []
    for k, g in enumerate(names):
        mask = codes == k
        others = np.delete(means, k)
        gap = float(means[k] - np.median(others)) if several else None
        differs = [
            r["groups"][1] if r["groups"][0] == g else r["groups"][0]
            for r in pair_rows
            if r["different"] and g in r["groups"]
        ]
        cis = {m: tables.group_ci(m, k, s) for m in ("positive_rate", "mean_score")}
        table.append(
            {
                "group": g,
                "n": int(mask.sum()),
                "fillers": list(category.groups[g]),
                "attributes": dict(category.attributes.get(g, {})),
                "positive_rate": _num(mf.by_group["positive_rate"][g]),
                "mean_score": _num(mf.by_group["mean_score"][g]),
                "ci": {m: [c.low, c.high] for m, c in cis.items()},
                "gap_to_others": gap,
                "differs_from": differs,
                # Flagged: differs from most other groups, so the group itself stands out
                # (one boosted group makes every pair with it differ, not the other pairs).
                "flagged": bool(several and len(differs) > (len(names) - 1) / 2),
            }
        )
    flagged = [r["group"] for r in table if r["flagged"]]
    test = f"permutation test on template-centred scores (n_perm={s.n_perm}, seed={s.seed})"
    metrics += [
        Metric(
            name=f"{prefix}.p_value",
            value=p_category,
            higher_is_better=None,
            n=n,
            ci_method=test,
            description="p-value for 'no difference in mean score between groups'.",
        ),
        Metric(
            name=f"{prefix}.n_flagged_groups",
            value=len(flagged),
            higher_is_better=False,
            description=f"Groups that differ from most other groups of the category (pairwise "
            f"Holm p < {s.alpha} and |gap| >= {s.min_gap}).",
        ),
    ]

    # Marginal comparisons for categories with attributes (names: gender, race).
    marginal: dict[str, Any] = {}
    for attr in sorted({a for attrs in category.attributes.values() for a in attrs}):
        values = [category.attributes.get(g, {}).get(attr) for g in groups]
        levels = sorted({str(v) for v in values if v is not None})
        if len(levels) < 2 or any(v is None for v in values):
            continue
        acodes = np.array([levels.index(str(v)) for v in values], dtype=np.int64)
        amf = _frame(scores, positive, pd.Series(values, name=attr))
        atables = _Tables.build(tmpl, acodes, scores, positive, len(levels))
        metrics += _gap_metrics(f"{prefix}.{attr}", amf, atables, n, s, len(levels))
        p_attr = permutation_test(resid, acodes, n_perm=s.n_perm, seed=s.seed)
        metrics.append(
            Metric(
                name=f"{prefix}.{attr}.p_value",
                value=p_attr,
                higher_is_better=None,
                n=n,
                ci_method=test,
                description=f"p-value for no difference in mean score by {attr}.",
            )
        )
        marginal[attr] = {
            "groups": levels,
            "positive_rate": {lv: _num(amf.by_group["positive_rate"][lv]) for lv in levels},
            "mean_score": {lv: _num(amf.by_group["mean_score"][lv]) for lv in levels},
            "p_value": p_attr,
        }

    # Counterfactual token fairness per template.
    per_template: list[dict[str, Any]] = []
    for t_index, t in enumerate(order):
        idx = np.flatnonzero(tmpl == t_index)
        lo, hi = idx[np.argmin(scores[idx])], idx[np.argmax(scores[idx])]
        per_template.append(
            {
                "template": t,
                "max_abs_delta_p": float(scores[hi] - scores[lo]),
                "flipped": len({predicted[int(i)] for i in idx}) > 1,
                "highest": {
                    "filler": instances[int(hi)].filler,
                    "group": instances[int(hi)].group,
                    "text": instances[int(hi)].text,
                    "score": float(scores[hi]),
                },
                "lowest": {
                    "filler": instances[int(lo)].filler,
                    "group": instances[int(lo)].group,
                    "text": instances[int(lo)].text,
                    "score": float(scores[lo]),
                },
            }
        )
    deltas = np.array([r["max_abs_delta_p"] for r in per_template])
    flips = sum(r["flipped"] for r in per_template)
    flip_ci = wilson_interval(flips, len(per_template))
    metrics += [
        Metric(
            name=f"{prefix}.ctf_gap_mean",
            value=float(deltas.mean()),
            higher_is_better=False,
            n=len(per_template),
            description="Mean over templates of the largest |Δp| between two fillers "
            "(counterfactual token fairness).",
        ),
        Metric(
            name=f"{prefix}.ctf_gap_max",
            value=float(deltas.max()),
            higher_is_better=False,
            n=len(per_template),
            description="Largest |Δp| between two fillers of one template.",
        ),
        Metric.with_interval(
            name=f"{prefix}.flip_rate",
            value=flips / len(per_template),
            higher_is_better=False,
            interval=flip_ci,
            n=len(per_template),
            description="Share of templates whose predicted label changes between fillers.",
        ),
    ]
    worst = sorted(per_template, key=lambda r: (-r["max_abs_delta_p"], r["template"]))[: s.top_k]
    details = {
        "description": category.description,
        "source": category.resource.name,
        "groups_compared": names,
        "by_group": table,
        "flagged_groups": flagged,
        "pairs": pair_rows,
        "p_value": p_category,
        "marginal": marginal,
        "worst_templates": worst,
        "n_instances": n,
    }
    return metrics, details, warnings
