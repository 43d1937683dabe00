"""Scoring texts with resume, and the counterfactual swap part of the bias suite.

``Scorer`` predicts texts in chunks and writes one example row per text, reusing the rows a
previous, interrupted run already wrote. ``run_swaps`` applies the swap rules of
``harness.bias.counterfactual`` to the evaluation texts and reports flip rate and |Δp| against
the runner's shared predictions of the originals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.bias.counterfactual import GENDER_PAIRS, apply_swap, swap_rules
from harness.data import Dataset
from harness.models.base import ModelAdapter
from harness.records import Metric, Resource
from harness.stats import bootstrap_mean_ci, wilson_interval
from harness.store import sha256_json
from harness.suites.base import SuiteContext, SuiteOutcome

if TYPE_CHECKING:
    from harness.bias.names import NameTable
    from harness.suites.bias import BiasParams

CHUNK = 256


class Scorer:
    """Scores texts in chunks, reusing rows already in the example log (resume) and
    appending new ones."""

    def __init__(self, model: ModelAdapter, pos: int, ctx: SuiteContext) -> None:
        self.model, self.pos, self.ctx = model, pos, ctx
        self.labels = tuple(model.label_names)
        self.positive_name = self.labels[pos]

    def score_rows(
        self, ids: Sequence[str], texts: Sequence[str], make: Any
    ) -> dict[str, dict[str, Any]]:
        done = self.ctx.examples.done
        rows = {i: dict(done[i]) for i in ids if i in done}
        todo = [k for k, i in enumerate(ids) if i not in done]
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start : start + CHUNK]
            probs = self.model.predict_proba([texts[k] for k in chunk])
            made = [
                make(k, float(prob[self.pos]), self.labels[int(np.argmax(prob))])
                for k, prob in zip(chunk, probs, strict=True)
            ]
            self.ctx.examples.extend(made)
            rows.update((r["id"], r) for r in made)
            self.ctx.progress(len(rows), len(ids))
        return rows


def run_swaps(
    params: BiasParams,
    data: Dataset,
    table: NameTable | None,
    scorer: Scorer,
    ctx: SuiteContext,
    out: SuiteOutcome,
) -> list[str]:
    """Swap gender words and names in the evaluation texts; rows, metrics and details into ``out``.

    Returns the ids of the swap rows in order."""
    p = params
    sample = data.sample(p.swap_max_examples, ctx.seed)
    preds = ctx.predictions()
    where = {i: k for k, i in enumerate(preds.ids)}
    out.resources.append(
        Resource(
            name="harness-gender-word-pairs",
            source="harness/bias/counterfactual.py:GENDER_PAIRS",
            sha256=sha256_json([list(x) for x in GENDER_PAIRS]),
            license="Apache-2.0",
            note="'her' is always swapped to 'his' (possessive reading)",
        )
    )
    if table is not None:
        from harness.catalog.bias import CENSUS_FIRST_NAMES

        out.resources.append(
            CENSUS_FIRST_NAMES.resource().model_copy(
                update={
                    "name": f"{CENSUS_FIRST_NAMES.name}#swaps",
                    "note": f"{p.swap_names_per_group} names per gender x race "
                    "cell, paired by frequency rank",
                }
            )
        )
    pending: list[
        tuple[str, str, str, str, list[list[str]]]
    ] = []  # id, kind, example id, swapped, repl
    for rule in swap_rules(table):
        pattern = rule.pattern()
        for ex_id, text in zip(sample.ids, sample.texts, strict=True):
            swapped, repl = apply_swap(text, rule, pattern)
            if repl and swapped != text and ex_id in where:
                pending.append((f"swap:{rule.kind}:{ex_id}", rule.kind, ex_id, swapped, repl))
    texts = dict(zip(sample.ids, sample.texts, strict=True))

    def row(k: int, score: float, label: str) -> dict[str, Any]:
        sid, kind, ex_id, swapped, repl = pending[k]
        probs = preds.probabilities[where[ex_id]]
        before = float(probs[scorer.pos])
        label0 = scorer.labels[int(np.argmax(probs))]
        return {
            "id": sid,
            "kind": "swap",
            "swap": kind,
            "example_id": ex_id,
            "original": texts[ex_id],
            "swapped": swapped,
            "replacements": repl,
            "score_original": before,
            "score_swapped": score,
            "delta_p": score - before,
            "abs_delta_p": abs(score - before),
            "predicted_original": label0,
            "predicted_swapped": label,
            "flipped": label != label0,
        }

    rows = scorer.score_rows([x[0] for x in pending], [x[3] for x in pending], row)
    details: dict[str, Any] = {"n_scanned": len(sample), "kinds": {}}
    for kind in dict.fromkeys(r.kind for r in swap_rules(table)):
        got = [rows[x[0]] for x in pending if x[1] == kind]
        prefix = f"swaps.{kind}"
        if not got:
            out.warnings.append(
                f"swaps {kind}: no evaluation text contains a swappable word or name; undefined"
            )
            out.metrics.append(
                Metric(name=f"{prefix}.flip_rate", value=None, higher_is_better=False, n=0)
            )
            continue
        flips = sum(r["flipped"] for r in got)
        fci = wilson_interval(flips, len(got))
        absd = [r["abs_delta_p"] for r in got]
        aci = bootstrap_mean_ci(absd, n_boot=max(p.n_boot, 1), seed=ctx.seed)
        sci = bootstrap_mean_ci([r["delta_p"] for r in got], n_boot=max(p.n_boot, 1), seed=ctx.seed)
        out.metrics += [
            Metric.with_interval(
                name=f"{prefix}.flip_rate",
                value=flips / len(got),
                higher_is_better=False,
                interval=fci,
                n=len(got),
                description=f"Share of swapped texts ({kind}) whose predicted label changes.",
            ),
            Metric.with_interval(
                name=f"{prefix}.mean_abs_delta_p",
                value=float(np.mean(absd)),
                higher_is_better=False,
                interval=aci,
                n=len(got),
                description=f"Mean |Δp| of the positive class after the {kind} swap.",
            ),
            Metric.with_interval(
                name=f"{prefix}.mean_delta_p",
                value=float(np.mean([r["delta_p"] for r in got])),
                higher_is_better=None,
                interval=sci,
                n=len(got),
                description=f"Mean signed Δp (swapped − original) of the {kind} swap.",
            ),
            Metric(
                name=f"{prefix}.max_abs_delta_p",
                value=float(max(absd)),
                higher_is_better=False,
                n=len(got),
            ),
        ]
        worst = sorted(got, key=lambda r: (-r["abs_delta_p"], r["id"]))[: p.top_k]
        details["kinds"][kind] = {"n": len(got), "flips": flips, "worst": worst}
    out.details["swaps"] = details
    return [x[0] for x in pending]
