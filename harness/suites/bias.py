"""Bias suite: Fairlearn group metrics on sensitive columns, template tests with identity
fillers, and counterfactual swaps on the evaluation texts.

* Group metrics (when the dataset has sensitive columns): see ``harness.bias.groups``; they use
  the runner's shared predictions, never a second forward pass.
* Template tests (no demographic column needed): templates x fillers (census first names by
  gender and race/ethnicity, identity terms); see ``harness.bias.template_tests``.
* Swaps: gender words and names in evaluation texts replaced by counterparts; flip rate and |Δp|.
* Examples whose shared prediction failed (``Predictions.errors``: the model raised or returned
  non-finite scores) are counted and named in one warning and left out of the group metrics
  and the swaps; everything else is analysed as usual.

The positive class is ``positive_label`` (default: the last label name, e.g. 'fresh' or 'pos');
"score" is the model's probability of that class. Per-example rows (``examples/bias.jsonl``):

* ``kind: template`` — id, template, category, group, filler, text, score, predicted, positive
* ``kind: swap`` — id, swap, example_id, original, swapped, replacements, score_original,
  score_swapped, delta_p (swapped − original), abs_delta_p, predicted_original,
  predicted_swapped, flipped
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from harness import registry
from harness.bias.swaps import Scorer, SwapSettings, run_swaps
from harness.data import Dataset
from harness.errors import ConfigError
from harness.models.base import ModelAdapter
from harness.predictions import Predictions
from harness.records import ChartSpec, Metric, Resource, SuiteCapabilities
from harness.suites.base import Suite, SuiteContext, SuiteOutcome, SuiteParams

KEY = "suites[bias].params"
MAX_NAMED_ERRORS = 5  # failed examples named in the warning; the record's details list up to 100
# Message templates (asserted by tests).
MSG_PREDICTION_ERRORS = (
    "bias: {n} evaluation example(s) without a prediction (the model failed; see "
    "predictions.jsonl 'error') left out of the group metrics and swaps: {ids}"
)
MSG_UNKNOWN_IDS = (
    "bias: {n} evaluation ids are neither predicted nor listed as prediction errors (first: "
    "{first!r}); the shared predictions belong to another split"
)
MSG_NO_PREDICTIONS = "every evaluation example's prediction failed; nothing to compare"


class BiasParams(SuiteParams):
    positive_label: str | None = Field(None, description="Positive class; default: the last label name.")
    sensitive_columns: list[str] | None = Field(
        None, description="Dataset group columns to compare; default: all of dataset.columns.groups."
    )
    intersectional: bool = Field(True, description="With several columns, also compare their intersections.")
    min_group_size: int = Field(30, ge=1, description="Smaller groups are reported but left out of gaps.")
    n_boot: int = Field(200, ge=0, le=10_000, description="Bootstrap resamples for CIs (0: none).")
    templates: bool = Field(True, description="Run the template tests.")
    template_file: str | None = Field(None, description="YAML template set replacing the built-in one.")
    extra_templates: list[str] = Field(default_factory=list, description="More template sentences with {person}.")
    builtin_fillers: bool = Field(True, description="Use the built-in identity-term categories.")
    census_names: bool = Field(
        True, description="Use census first names (template category 'first_name' and name swaps)."
    )
    filler_files: list[str] = Field(default_factory=list, description="Extra filler YAML files (same format).")
    extra_fillers: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict, description="Inline filler categories: {category: {group: [phrases]}}."
    )
    categories: list[str] | None = Field(None, description="Keep only these filler categories.")
    names_per_group: int = Field(5, ge=1, le=200, description="Census names per gender x race cell.")
    min_race_share: float = Field(0.6, gt=0.5, le=1.0, description="Least race/ethnicity share of a name.")
    min_gender_share: float = Field(0.95, gt=0.5, le=1.0, description="Least sex share of a name.")
    n_perm: int = Field(1000, ge=99, le=100_000, description="Permutations per test.")
    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="Significance level (after Holm).")
    min_gap: float = Field(
        0.02, ge=0.0, le=1.0, description="Least |mean score gap| for two template groups to differ."
    )
    swaps: bool = Field(True, description="Run counterfactual swaps on the evaluation texts.")
    swap_max_examples: int | None = Field(None, ge=1, description="Scan a deterministic sample only.")
    swap_names_per_group: int = Field(50, ge=1, le=1000, description="Census names per cell for swaps.")
    top_k: int = Field(5, ge=0, le=100, description="Worst templates / swaps kept as examples.")


@registry.suites.register
class BiasSuite(Suite[BiasParams]):
    name = "bias"
    version = "1.1"
    Params = BiasParams
    capabilities = SuiteCapabilities(
        headline="demographic_parity_difference", charts=[ChartSpec(kind="bias")]
    )
    # Offline and quick: no census download, two small filler categories, small resamples.
    smoke_params: ClassVar[dict[str, Any]] = {
        "census_names": False,
        "categories": ["religion", "gender_word"],
        "min_group_size": 2,
        "n_boot": 20,
        "n_perm": 400,
    }
    description = (
        "Fairlearn group metrics, EEC-style template tests with identity "
        "fillers, counterfactual swaps"
    )

    def run(self, model: ModelAdapter, data: Dataset, ctx: SuiteContext) -> SuiteOutcome:
        p = self.params
        labels = tuple(model.label_names)
        positive = p.positive_label if p.positive_label is not None else labels[-1]
        if positive not in labels:
            raise ConfigError(
                f"{KEY}.positive_label: {positive!r} is not a label of the model "
                f"({', '.join(labels)})"
            )
        out = SuiteOutcome(metrics=[], details={"positive_label": positive})
        out.departures += [
            "template CIs resample templates (cluster bootstrap via harness.stats), not "
            "Fairlearn's i.i.d. bootstrap over instances, which ignores that instances of "
            "one template are correlated",
            "group-gap CIs (demographic parity, accuracy, equalized odds) are not Fairlearn's "
            "bootstrap: a percentile bootstrap of a max - min gap is biased upwards (it excluded "
            "0 for equal groups and could exclude its own estimate); they are the range of the "
            "gap over simultaneous Wilson intervals of the rates (Bonferroni; "
            "harness.bias.gap_intervals), conservative by construction; per-group rate CIs are "
            "Wilson intervals",
            "a group without positives (negatives) has an undefined TPR (FPR) and takes no part "
            "in that rate's gap; Fairlearn's equalized_odds_difference counts it as 0 instead",
            "counterfactual swaps always map 'her' to 'his' (possessive reading)",
        ]
        order: list[str] = []
        table = None
        if p.census_names and (p.templates or p.swaps):
            from harness.bias.names import load_name_table

            table = load_name_table(
                per_group=max(p.names_per_group, p.swap_names_per_group),
                min_race_share=p.min_race_share,
                min_gender_share=p.min_gender_share,
            )
        # Template and filler lists are read (and refused) before any computation.
        lists = self._categories(table) if p.templates else None
        # Examples whose prediction failed are said once and left out of groups and swaps.
        scored = (
            self._with_predictions(data, ctx.predictions(), out)
            if p.swaps or self._columns(data)
            else data
        )
        order += self._groups(data, scored, ctx, labels.index(positive), out)
        scorer = Scorer(model, labels.index(positive), ctx.examples, ctx.progress)
        if lists is not None:
            order += self._templates(lists, scorer, ctx, out)
        else:
            out.details["templates"] = {"skipped": "params.templates is false"}
        if p.swaps:
            order += self._swaps(data, table, scorer, ctx, out)
        out.example_order = order
        out.resources = list({r.name: r for r in reversed(out.resources)}.values())[
            ::-1
        ]  # first wins
        return out

    def _groups(
        self, full: Dataset, data: Dataset, ctx: SuiteContext, pos: int, out: SuiteOutcome
    ) -> list[str]:
        """Group metrics over ``data``, the examples of ``full`` that have a prediction (the
        columns are checked against ``full``, so a config error never hides behind errors),
        then impact ratios; returns the ids of the per-example membership rows it wrote."""
        from harness.bias.groups import check_columns, group_metrics

        p = self.params
        columns = self._columns(full)
        if not columns:
            out.details["groups"] = {"skipped": "the dataset has no sensitive (group) columns"}
            out.details["impact"] = {"skipped": "the dataset has no sensitive (group) columns"}
            return []
        check_columns(full.groups, columns)
        if not len(data):
            out.details["groups"] = out.details["impact"] = {"skipped": MSG_NO_PREDICTIONS}
            return []
        preds = ctx.predictions()
        where = {i: k for k, i in enumerate(preds.ids)}
        rows = np.array([where[i] for i in data.ids], dtype=np.int64)
        y_true = (np.asarray(data.labels, dtype=np.int64) == pos).astype(np.int64)
        y_pred = (preds.probabilities[rows].argmax(axis=1) == pos).astype(np.int64)
        sets = [[c] for c in columns] + ([columns] if p.intersectional and len(columns) > 1 else [])
        details: dict[str, Any] = {}
        for cols in sets:
            res = group_metrics(
                y_true=y_true,
                y_pred=y_pred,
                sensitive=data.groups,
                columns=cols,
                min_group_size=p.min_group_size,
            )
            out.metrics += res.metrics
            out.warnings += res.warnings
            details[res.key] = res.details
        out.details["groups"] = details
        return _impact(data, preds.probabilities[rows, pos], y_pred.astype(bool), columns, p, ctx, out)

    def _swaps(
        self, data: Dataset, table: Any, scorer: Scorer, ctx: SuiteContext, out: SuiteOutcome
    ) -> list[str]:
        """Counterfactual swaps (``harness.bias.swaps``) merged into ``out``; their row ids."""
        p = self.params
        settings = SwapSettings(
            max_examples=p.swap_max_examples,
            names_per_group=p.swap_names_per_group,
            n_boot=p.n_boot,
            top_k=p.top_k,
            seed=ctx.seed,
        )
        result = run_swaps(settings, data, table, scorer, ctx.predictions())
        out.resources += result.resources
        out.warnings += result.warnings
        out.metrics += result.metrics
        out.details["swaps"] = result.details
        return result.order

    def _columns(self, data: Dataset) -> list[str]:
        """The sensitive columns to compare: the parameter, else every group column."""
        p = self.params
        return list(p.sensitive_columns) if p.sensitive_columns is not None else sorted(data.groups)

    @staticmethod
    def _with_predictions(data: Dataset, preds: Predictions, out: SuiteOutcome) -> Dataset:
        """The examples that have a shared prediction; failed ones are counted and named in a
        warning (the model raised or returned non-finite scores on them), never scored."""
        known = set(preds.ids)
        failed = [i for i in data.ids if i in preds.errors]
        unknown = [i for i in data.ids if i not in known and i not in preds.errors]
        if unknown:
            raise ConfigError(MSG_UNKNOWN_IDS.format(n=len(unknown), first=unknown[0]))
        if not failed:
            return data
        shown = ", ".join(f"{i!r} ({preds.errors[i]})" for i in failed[:MAX_NAMED_ERRORS])
        more = len(failed) - MAX_NAMED_ERRORS
        out.warnings.append(
            MSG_PREDICTION_ERRORS.format(
                n=len(failed), ids=shown + (f" and {more} more" if more > 0 else "")
            )
        )
        out.details["prediction_errors"] = {"n": len(failed), "ids": failed[:100]}
        return data.subset([k for k, i in enumerate(data.ids) if i in known])

    def _categories(self, table: Any) -> tuple[list[Any], list[Any], list[Resource], Any]:
        from harness.bias.fillers import (
            builtin_categories,
            load_filler_file,
            parse_filler_data,
            select_categories,
        )
        from harness.bias.templates import builtin_templates, load_template_file, parse_templates

        p = self.params
        if p.template_file is not None:
            templates, t_res = load_template_file(Path(p.template_file), key=f"{KEY}.template_file")
        else:
            templates, t_res = builtin_templates()
        resources = [t_res]
        if p.extra_templates:
            extra = parse_templates(
                {
                    "templates": [
                        {"id": f"user-{i:03d}", "text": t} for i, t in enumerate(p.extra_templates)
                    ]
                },
                where=f"{KEY}.extra_templates",
            )
            templates = [*templates, *extra]
            resources.append(
                Resource(name="run-file-templates", source=f"run file ({KEY}.extra_templates)")
            )
        cats = [table.category(p.names_per_group)] if p.census_names and table is not None else []
        cats += builtin_categories() if p.builtin_fillers else []
        for i, file in enumerate(p.filler_files):
            cats += load_filler_file(Path(file), key=f"{KEY}.filler_files[{i}]")
        if p.extra_fillers:
            inline = {"categories": {c: {"groups": g} for c, g in p.extra_fillers.items()}}
            user = Resource(name="run-file-fillers", source=f"run file ({KEY}.extra_fillers)")
            cats += parse_filler_data(inline, where=f"{KEY}.extra_fillers", resource=user)
        cats = select_categories(cats, p.categories, key=f"{KEY}.categories")
        if not cats:
            raise ConfigError(
                f"{KEY}: the template tests have no filler categories (all sources turned off)"
            )
        resources += [c.resource for c in cats]
        return templates, cats, resources, table

    def _templates(
        self, lists: Any, scorer: Scorer, ctx: SuiteContext, out: SuiteOutcome
    ) -> list[str]:
        """Template tests: score every template x filler instance, then test each category."""
        from harness.bias.template_tests import ProbeSettings, analyse_category, build_instances

        p = self.params
        templates, cats, resources, table = lists
        out.resources += resources
        settings = ProbeSettings(
            n_boot=p.n_boot, n_perm=p.n_perm, alpha=p.alpha, min_gap=p.min_gap, seed=ctx.seed,
            top_k=p.top_k,
        )
        if table is not None and p.census_names:
            out.warnings += _census_shortfall(table, p.names_per_group)
        per_cat = {c.name: build_instances(templates, c) for c in cats}
        every = [i for c in cats for i in per_cat[c.name]]
        rows = scorer.score_rows(
            [i.id for i in every],
            [i.text for i in every],
            lambda k, score, label: _template_row(every[k], score, label, scorer.positive_name),
        )
        details: dict[str, Any] = {
            "templates": [t.id for t in templates],
            "n_instances": len(every),
            "categories": {},
        }
        gaps: list[float] = []
        n_sig = 0
        for c in cats:
            got = [rows[i.id] for i in per_cat[c.name]]
            m, d, w = analyse_category(
                c,
                per_cat[c.name],
                [r["score"] for r in got],
                [int(r["positive"]) for r in got],
                [r["predicted"] for r in got],
                settings,
            )
            out.metrics += m
            out.warnings += w
            details["categories"][c.name] = d
            gap = next(x.value for x in m if x.name == f"templates.{c.name}.score_gap")
            gaps += [gap] if gap is not None else []
            n_sig += len(d["flagged_groups"])
        out.metrics += _template_totals(gaps, n_sig, p.alpha, p.min_gap)
        out.details["templates"] = details
        return [i.id for i in every]


def _impact(
    data: Dataset, scores: Any, selected: Any, columns: list[str], p: BiasParams,
    ctx: SuiteContext, out: SuiteOutcome,
) -> list[str]:
    """LL144 selection/scoring rates and impact ratios (``harness.bias.impact``), and one
    membership row per example; returns those rows' ids."""
    from harness.bias.impact import (
        IMPACT_DEPARTURE,
        LL144_MIN_SHARE,
        ImpactInput,
        impact_tables,
        member_rows,
    )

    sample = ImpactInput(selected=selected, scores=scores, groups=data.groups)
    res = impact_tables(sample, columns, intersectional=p.intersectional, min_share=LL144_MIN_SHARE)
    out.metrics += res.metrics
    out.warnings += res.warnings
    out.details["impact"] = res.details
    out.departures.append(IMPACT_DEPARTURE)
    rows = member_rows(data.ids, sample, columns)
    ctx.examples.extend(rows)
    return [r["id"] for r in rows]


def _census_shortfall(table: Any, per_group: int) -> list[str]:
    """A warning when some gender x race cell has fewer qualifying census names than asked."""
    short = [f"{g}/{r}" for (g, r), names in table.cells.items() if len(names) < per_group]
    if not short:
        return []
    return [f"census names: fewer than {per_group} names qualify in {', '.join(short)}"]


def _template_row(instance: Any, score: float, label: str, positive_name: str) -> dict[str, Any]:
    """The example row of one scored template instance."""
    return {
        "id": instance.id,
        "kind": "template",
        "template": instance.template,
        "category": instance.category,
        "group": instance.group,
        "filler": instance.filler,
        "text": instance.text,
        "score": score,
        "predicted": label,
        "positive": label == positive_name,
    }


def _template_totals(gaps: list[float], n_sig: int, alpha: float, min_gap: float) -> list[Metric]:
    """The two figures over every filler category."""
    return [
        Metric(
            name="templates.max_score_gap",
            value=max(gaps) if gaps else None,
            higher_is_better=False,
            description="Largest mean-score gap between groups of any filler category.",
        ),
        Metric(
            name="templates.n_flagged_groups",
            value=n_sig,
            higher_is_better=False,
            description="Filler groups that differ from most other groups of their "
            f"category (pairwise Holm p < {alpha} and |gap| >= {min_gap}).",
        ),
    ]
