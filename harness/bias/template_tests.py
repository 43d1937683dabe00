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
``harness.stats.bootstrap_ci``, in ``harness.bias.template_groups``): the instances of one
template are correlated, so resampling instances would give intervals that are too narrow.

Token fairness: per template, the largest |Δp| between two fillers of the category (max − min
score) and whether the predicted label flips between fillers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.bias.fillers import FillerCategory, normalise_filler
from harness.bias.template_groups import GroupTables, gap_metrics, group_frame
from harness.bias.templates import Template
from harness.records import Metric, finite_or_none
from harness.stats import holm, permutation_test, wilson_interval


@dataclass(frozen=True)
class ProbeSettings:
    """The template tests' parameters (from the bias suite's params)."""

    n_boot: int
    n_perm: int
    alpha: float
    min_gap: float
    seed: int
    top_k: int


@dataclass(frozen=True)
class Instance:
    """One template filled with one filler of a category (the model scores its text)."""

    id: str
    template: str
    category: str
    group: str
    filler: str
    text: str


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


@dataclass(frozen=True)
class _Category:
    """One filler category's instances as aligned arrays, with what every analysis step reads:
    template and group codes, Fairlearn's frame, the per-template tables, and the
    template-centred scores the permutation tests compare."""

    category: FillerCategory
    instances: Sequence[Instance]
    scores: Any
    positive: Any
    groups: Any
    names: list[str]
    order: list[str]
    tmpl: Any
    codes: Any
    mf: Any
    tables: GroupTables
    resid: Any

    @classmethod
    def build(
        cls,
        category: FillerCategory,
        instances: Sequence[Instance],
        scores: Any,
        positive: Any,
        s: ProbeSettings,
    ) -> _Category:
        import pandas as pd

        scores = np.asarray(scores, dtype=np.float64)
        positive = np.asarray(positive, dtype=np.float64)
        groups = np.array([i.group for i in instances], dtype=object)
        names = list(category.groups)
        order = list(dict.fromkeys(i.template for i in instances))
        tmpl = np.array([order.index(i.template) for i in instances], dtype=np.int64)
        codes = np.array([names.index(g) for g in groups], dtype=np.int64)
        mf = group_frame(scores, positive, pd.Series(groups, name=category.name))
        tables = GroupTables.build(
            tmpl, codes, scores, positive, len(names), n_boot=s.n_boot, seed=s.seed
        )
        # Template-centred scores: the template's own effect removed, only the filler's left.
        resid = scores - (tables.score.sum(axis=1) / tables.count.sum(axis=1))[tmpl]
        return cls(
            category=category,
            instances=instances,
            scores=scores,
            positive=positive,
            groups=groups,
            names=names,
            order=order,
            tmpl=tmpl,
            codes=codes,
            mf=mf,
            tables=tables,
            resid=resid,
        )

    @property
    def prefix(self) -> str:
        return f"templates.{self.category.name}"

    @property
    def several(self) -> bool:
        return len(self.names) > 1


def analyse_category(
    category: FillerCategory,
    instances: Sequence[Instance],
    scores: Any,
    positive: Any,
    predicted: Sequence[str],
    s: ProbeSettings,
) -> tuple[list[Metric], dict[str, Any], list[str]]:
    """Metrics, details and warnings for one filler category (instances aligned with scores)."""
    c = _Category.build(category, instances, scores, positive, s)
    n = len(instances)
    warnings: list[str] = []
    metrics = gap_metrics(c.prefix, c.mf, c.tables, n, len(c.names))
    if not c.several:
        warnings.append(
            f"templates {category.name}: one group only ({c.names[0]!r}); gaps and tests undefined"
        )
    p_category = (
        permutation_test(c.resid, c.codes, n_perm=s.n_perm, seed=s.seed) if c.several else None
    )
    means = np.array([c.scores[c.codes == k].mean() for k in range(len(c.names))])
    pair_rows, warning = _pairs(c, means, s)
    warnings += warning
    table = _group_table(c, means, pair_rows)
    flagged = [r["group"] for r in table if r["flagged"]]
    metrics += _category_tests(c, p_category, len(flagged), s)
    marginal, by_attribute = _marginal(c, s)
    metrics += by_attribute
    per_template = _token_fairness(c, predicted)
    metrics += _token_fairness_metrics(c.prefix, per_template)
    worst = sorted(per_template, key=lambda r: (-r["max_abs_delta_p"], r["template"]))[: s.top_k]
    details = {
        "description": category.description,
        "source": category.resource.name,
        "groups_compared": c.names,
        "by_group": table,
        "flagged_groups": flagged,
        "pairs": pair_rows,
        "p_value": p_category,
        "marginal": marginal,
        "worst_templates": worst,
        "n_instances": n,
    }
    return metrics, details, warnings


def _test_name(s: ProbeSettings) -> str:
    """How the category's and the attributes' p-values were computed (their ci_method)."""
    return f"permutation test on template-centred scores (n_perm={s.n_perm}, seed={s.seed})"


def _pairs(c: _Category, means: Any, s: ProbeSettings) -> tuple[list[dict[str, Any]], list[str]]:
    """Every pair of groups: gap, permutation p, Holm-adjusted p, and whether they differ
    (adjusted p below alpha and |gap| at least min_gap). Warns when n_perm is too small for
    any pair to reach significance after Holm."""
    names, codes, resid = c.names, c.codes, c.resid
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
    warnings = []
    if pairs and len(pairs) / (s.n_perm + 1) >= s.alpha:
        warnings.append(
            f"templates {c.category.name}: n_perm={s.n_perm} is too small for {len(pairs)} pairwise "
            f"tests: no pair can reach Holm p < {s.alpha}; raise n_perm above "
            f"{int(len(pairs) / s.alpha)}"
        )
    rows = [
        {
            "groups": [names[a], names[b]],
            "gap": float(means[a] - means[b]),
            "p_value": p_pairs[i],
            "p_holm": p_adjusted[i],
            "different": bool(p_adjusted[i] < s.alpha and abs(means[a] - means[b]) >= s.min_gap),
        }
        for i, (a, b) in enumerate(pairs)
    ]
    return rows, warnings


def _group_table(c: _Category, means: Any, pair_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per group: its figures with template-resampled intervals, its gap to the
    others' median, the groups it differs from, and whether it is flagged."""
    category, names = c.category, c.names
    table = []
    for k, g in enumerate(names):
        mask = c.codes == k
        others = np.delete(means, k)
        gap = float(means[k] - np.median(others)) if c.several else None
        differs = [
            r["groups"][1] if r["groups"][0] == g else r["groups"][0]
            for r in pair_rows
            if r["different"] and g in r["groups"]
        ]
        cis = {m: c.tables.group_ci(m, k) for m in ("positive_rate", "mean_score")}
        table.append(
            {
                "group": g,
                "n": int(mask.sum()),
                "fillers": list(category.groups[g]),
                "attributes": dict(category.attributes.get(g, {})),
                "positive_rate": finite_or_none(c.mf.by_group["positive_rate"][g]),
                "mean_score": finite_or_none(c.mf.by_group["mean_score"][g]),
                "ci": {m: [ci.low, ci.high] for m, ci in cis.items()},
                "gap_to_others": gap,
                "differs_from": differs,
                # Flagged: differs from most other groups, so the group itself stands out
                # (one boosted group makes every pair with it differ, not the other pairs).
                "flagged": bool(c.several and len(differs) > (len(names) - 1) / 2),
            }
        )
    return table


def _category_tests(
    c: _Category, p_category: float | None, n_flagged: int, s: ProbeSettings
) -> list[Metric]:
    """The category's p-value (no difference between groups) and its number of flagged groups."""
    return [
        Metric(
            name=f"{c.prefix}.p_value",
            value=p_category,
            higher_is_better=None,
            n=len(c.instances),
            ci_method=_test_name(s),
            description="p-value for 'no difference in mean score between groups'.",
        ),
        Metric(
            name=f"{c.prefix}.n_flagged_groups",
            value=n_flagged,
            higher_is_better=False,
            description=f"Groups that differ from most other groups of the category (pairwise "
            f"Holm p < {s.alpha} and |gap| >= {s.min_gap}).",
        ),
    ]


def _marginal(c: _Category, s: ProbeSettings) -> tuple[dict[str, Any], list[Metric]]:
    """Marginal comparisons for categories whose groups carry attributes (names: gender, race):
    the details by attribute, and its gap metrics and permutation test.
    An attribute with fewer than two levels, or missing for some group, is skipped."""
    import pandas as pd

    category, n = c.category, len(c.instances)
    marginal: dict[str, Any] = {}
    metrics: list[Metric] = []
    for attr in sorted({a for attrs in category.attributes.values() for a in attrs}):
        values = [category.attributes.get(g, {}).get(attr) for g in c.groups]
        levels = sorted({str(v) for v in values if v is not None})
        if len(levels) < 2 or any(v is None for v in values):
            continue
        acodes = np.array([levels.index(str(v)) for v in values], dtype=np.int64)
        amf = group_frame(c.scores, c.positive, pd.Series(values, name=attr))
        atables = GroupTables.build(
            c.tmpl, acodes, c.scores, c.positive, len(levels), n_boot=s.n_boot, seed=s.seed
        )
        metrics += gap_metrics(f"{c.prefix}.{attr}", amf, atables, n, len(levels))
        p_attr = permutation_test(c.resid, acodes, n_perm=s.n_perm, seed=s.seed)
        metrics.append(
            Metric(
                name=f"{c.prefix}.{attr}.p_value",
                value=p_attr,
                higher_is_better=None,
                n=n,
                ci_method=_test_name(s),
                description=f"p-value for no difference in mean score by {attr}.",
            )
        )
        marginal[attr] = {
            "groups": levels,
            "positive_rate": {lv: finite_or_none(amf.by_group["positive_rate"][lv]) for lv in levels},
            "mean_score": {lv: finite_or_none(amf.by_group["mean_score"][lv]) for lv in levels},
            "p_value": p_attr,
        }
    return marginal, metrics


def _token_fairness(c: _Category, predicted: Sequence[str]) -> list[dict[str, Any]]:
    """Counterfactual token fairness per template: the largest |Δp| between two of its fillers
    (with the highest- and lowest-scoring instance) and whether the predicted label flips."""
    scores, instances = c.scores, c.instances

    def instance(i: Any) -> dict[str, Any]:
        inst = instances[int(i)]
        return {
            "filler": inst.filler,
            "group": inst.group,
            "text": inst.text,
            "score": float(scores[i]),
        }

    per_template: list[dict[str, Any]] = []
    for t_index, t in enumerate(c.order):
        idx = np.flatnonzero(c.tmpl == t_index)
        lo, hi = idx[np.argmin(scores[idx])], idx[np.argmax(scores[idx])]
        per_template.append(
            {
                "template": t,
                "max_abs_delta_p": float(scores[hi] - scores[lo]),
                "flipped": len({predicted[int(i)] for i in idx}) > 1,
                "highest": instance(hi),
                "lowest": instance(lo),
            }
        )
    return per_template


def _token_fairness_metrics(prefix: str, per_template: list[dict[str, Any]]) -> list[Metric]:
    """Mean and largest counterfactual gap over templates, and the share of templates whose
    predicted label flips (Wilson interval)."""
    deltas = np.array([r["max_abs_delta_p"] for r in per_template])
    flips = sum(r["flipped"] for r in per_template)
    flip_ci = wilson_interval(flips, len(per_template))
    return [
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
