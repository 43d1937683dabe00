"""Scoring texts with resume, and the counterfactual swap part of the bias suite.

``Scorer`` predicts texts in chunks and writes one example row per text, reusing the rows a
previous, interrupted run already wrote. ``run_swaps`` applies the swap rules of
``harness.bias.counterfactual`` to the evaluation texts and reports flip rate and |Δp| against
the runner's shared predictions of the originals.

A part, not a suite: it takes plain values (the example log, a progress callback, the shared
predictions' ids and probabilities, ``SwapSettings``) and returns a ``SwapResult`` the bias suite
merges into its outcome, so nothing here imports ``harness.suites``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from harness.bias.counterfactual import GENDER_PAIRS, apply_swap, swap_rules
from harness.data import Dataset
from harness.models.base import ModelAdapter
from harness.records import Metric, Resource
from harness.stats import bootstrap_mean_ci, wilson_interval
from harness.store import ExampleLog, sha256_json

if TYPE_CHECKING:
    from harness.bias.names import NameTable

CHUNK = 256
Row = dict[str, Any]
MakeRow = Callable[[int, float, str], Row]  # (index into the texts, positive score, label) -> row
Pending = tuple[str, str, str, str, list[list[str]]]  # row id, kind, example id, swapped, repl


class SharedPredictions(Protocol):
    """What the swaps read of the runner's shared predictions of the evaluation split."""

    @property
    def ids(self) -> tuple[str, ...]: ...

    @property
    def probabilities(self) -> npt.NDArray[np.float64]: ...


class Scorer:
    """Scores texts in chunks, reusing rows already in the example log (resume) and
    appending new ones."""

    def __init__(
        self,
        model: ModelAdapter,
        pos: int,
        examples: ExampleLog,
        progress: Callable[[int, int], None],
    ) -> None:
        self.model, self.pos, self.examples, self.progress = model, pos, examples, progress
        self.labels = tuple(model.label_names)
        self.positive_name = self.labels[pos]

    def score_rows(self, ids: Sequence[str], texts: Sequence[str], make: MakeRow) -> dict[str, Row]:
        done = self.examples.done
        rows = {i: dict(done[i]) for i in ids if i in done}
        todo = [k for k, i in enumerate(ids) if i not in done]
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start : start + CHUNK]
            probs = self.model.predict_proba([texts[k] for k in chunk])
            made = [
                make(k, float(prob[self.pos]), self.labels[int(np.argmax(prob))])
                for k, prob in zip(chunk, probs, strict=True)
            ]
            self.examples.extend(made)
            rows.update((r["id"], r) for r in made)
            self.progress(len(rows), len(ids))
        return rows


@dataclass(frozen=True)
class SwapSettings:
    """The bias suite's swap parameters (``swap_max_examples`` etc.), as plain values."""

    max_examples: int | None
    names_per_group: int
    n_boot: int
    top_k: int
    seed: int


@dataclass
class SwapResult:
    """What the swaps add to the bias suite's outcome, in the order they were found."""

    metrics: list[Metric] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # the swap rows' ids


def run_swaps(
    settings: SwapSettings,
    data: Dataset,
    table: NameTable | None,
    scorer: Scorer,
    predictions: SharedPredictions,
) -> SwapResult:
    """Swap gender words and names in the evaluation texts and score the swapped texts."""
    out = SwapResult(resources=_resources(settings, table))
    sample = data.sample(settings.max_examples, settings.seed)
    where = {i: k for k, i in enumerate(predictions.ids)}
    pending: list[Pending] = []
    for rule in swap_rules(table):
        pattern = rule.pattern()
        for ex_id, text in zip(sample.ids, sample.texts, strict=True):
            swapped, repl = apply_swap(text, rule, pattern)
            if repl and swapped != text and ex_id in where:
                pending.append((f"swap:{rule.kind}:{ex_id}", rule.kind, ex_id, swapped, repl))
    texts = dict(zip(sample.ids, sample.texts, strict=True))

    def row(k: int, score: float, label: str) -> Row:
        probs = predictions.probabilities[where[pending[k][2]]]
        return _swap_row(pending[k], texts, scorer, probs, score, label)

    rows = scorer.score_rows([x[0] for x in pending], [x[3] for x in pending], row)
    details: dict[str, Any] = {"n_scanned": len(sample), "kinds": {}}
    for kind in dict.fromkeys(r.kind for r in swap_rules(table)):
        got = [rows[x[0]] for x in pending if x[1] == kind]
        if not got:
            out.warnings.append(
                f"swaps {kind}: no evaluation text contains a swappable word or name; undefined"
            )
            out.metrics.append(
                Metric(name=f"swaps.{kind}.flip_rate", value=None, higher_is_better=False, n=0)
            )
            continue
        out.metrics += _kind_metrics(kind, got, settings)
        worst = sorted(got, key=lambda r: (-r["abs_delta_p"], r["id"]))[: settings.top_k]
        flips = sum(r["flipped"] for r in got)
        details["kinds"][kind] = {"n": len(got), "flips": flips, "worst": worst}
    out.details = details
    out.order = [x[0] for x in pending]
    return out


def _resources(settings: SwapSettings, table: NameTable | None) -> list[Resource]:
    """The word pairs always; the census names when name swaps run."""
    resources = [
        Resource(
            name="harness-gender-word-pairs",
            source="harness/bias/counterfactual.py:GENDER_PAIRS",
            sha256=sha256_json([list(x) for x in GENDER_PAIRS]),
            license="Apache-2.0",
            note="'her' is always swapped to 'his' (possessive reading)",
        )
    ]
    if table is not None:
        from harness.catalog.bias import CENSUS_FIRST_NAMES

        resources.append(
            CENSUS_FIRST_NAMES.resource().model_copy(
                update={
                    "name": f"{CENSUS_FIRST_NAMES.name}#swaps",
                    "note": f"{settings.names_per_group} names per gender x race "
                    "cell, paired by frequency rank",
                }
            )
        )
    return resources


def _swap_row(
    item: Pending,
    texts: dict[str, str],
    scorer: Scorer,
    probs: npt.NDArray[np.float64],
    score: float,
    label: str,
) -> Row:
    """One swap's example row: the original's shared prediction against the swapped text's."""
    sid, kind, ex_id, swapped, repl = item
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


def _kind_metrics(kind: str, got: list[Row], settings: SwapSettings) -> list[Metric]:
    """Flip rate (Wilson), mean |Δp| and mean Δp (bootstrap) and max |Δp| of one swap kind."""
    prefix = f"swaps.{kind}"
    flips = sum(r["flipped"] for r in got)
    fci = wilson_interval(flips, len(got))
    absd = [r["abs_delta_p"] for r in got]
    n_boot = max(settings.n_boot, 1)
    aci = bootstrap_mean_ci(absd, n_boot=n_boot, seed=settings.seed)
    sci = bootstrap_mean_ci([r["delta_p"] for r in got], n_boot=n_boot, seed=settings.seed)
    return [
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
