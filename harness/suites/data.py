"""Data suite: what the evaluation figures are worth, given the data under them.

* **contamination**: evaluation examples that also appear, exactly or nearly, in data the model
  was trained or selected on (``harness.data_checks.seen``); the clean rest is published as the
  ``clean`` subset, on which the runner scores every suite that can score any set
  (``harness.run.views``), so their headline figures appear beside the full ones;
* **integrity**: duplicates and label conflicts inside the split, class balance, lengths and
  truncation, near-empty texts, script mix;
* **label issues**: cleanlab's probable label errors on the clean examples' predictions;
* **shift**: MMD permutation test on sentence embeddings between the training data and the split,
  and per-feature shifts;
* **weak slices**: candidates searched on one half of the split, confirmed on the other, with
  Benjamini–Hochberg control of the false discovery rate.

Every slice candidate's accuracy is a metric (``slice.<slug>.accuracy``), so a gate rule can name
a slice (``data.slice.negation.accuracy >= 0.8``); confirmed ones also get ``weak.<slug>.*``
figures from the confirmation half. Per-example rows carry each example's half, correctness,
contamination match (split and id), flags and slice membership (``in:<slug>``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from harness import registry
from harness.config import DataFormat
from harness.data import Dataset
from harness.data_checks import contamination as cont
from harness.data_checks import integrity, label_issues, seen, shift, slices
from harness.data_checks.embed import embeddings
from harness.data_checks.normalise import words
from harness.models.base import ModelAdapter
from harness.records import ChartSpec, Metric, StrictModel, SuiteCapabilities, proportion_metric
from harness.suites.base import Suite, SuiteContext, SuiteOutcome, SuiteParams

# Named-group word lists for slice candidates, from the bias suite's lexicons. Age words (young,
# old) and 'straight' are left out: in ordinary text they rarely name a group.
FRAME_WORDS = {"a", "an", "the", "my", "person", "friend", "in", "without", "disability", "no"}
MENTION_CATEGORIES = ("nationality", "religion", "sexual_orientation", "disability")
LEFT_OUT_GROUPS = {"straight", "no_disability"}
MSG_CONTAMINATED = (
    "{share:.1%} of the evaluation split ({k} of {n}) also appears in data the model saw ({sources}); "
    "figures on the full split overstate what it does on unseen data: see the 'clean' subset's figures"
)
MSG_NOT_SEEN = "contamination: no training or selection data is known (no fine-tuning card, no other split, no seen_files); not checked"
MSG_SHIFT = "shift: the evaluation split differs from {reference} (MMD permutation p = {p:.3g})"
MSG_WEAK = "confirmed weak slice {slug!r}: {description}: accuracy {acc:.3f} [{low:.3f}, {high:.3f}] on {n} held-out examples vs {rest:.3f} elsewhere (q = {q:.3g})"
MSG_LABEL_ISSUES = "{k} example(s) are probably mislabelled (cleanlab); see details.label_issues"


class SeenFile(StrictModel):
    """A file of texts the model saw (its training data, when it was not fine-tuned here)."""

    path: str = Field(description="CSV, JSONL, Parquet, Arrow file or save_to_disk folder.")
    text: str = Field(default="text", description="Its text column.")
    id: str | None = Field(default=None, description="Its id column (row numbers when absent).")
    format: DataFormat = "auto"


class DataParams(SuiteParams):
    seen_splits: list[str] | None = Field(default=None, description="Splits the model saw; default: the fine-tuning card's train and dev, else every other split.")
    seen_files: list[SeenFile] = Field(default_factory=list, description="Files of texts the model saw.")
    near_threshold: float = Field(default=0.7, gt=0.0, le=1.0, description="Jaccard similarity of character shingles for a near duplicate.")
    num_perm: int = Field(default=128, ge=16, le=1024, description="MinHash permutations.")
    shingle_size: int = Field(default=5, ge=2, le=20, description="Characters per shingle.")
    embedding_threshold: float | None = Field(default=None, gt=0.0, le=1.0, description="Also match by embedding cosine at or above this (slow: embeds every seen text).")
    near_empty_chars: int = Field(default=3, ge=1, description="Texts with fewer letters or digits are near-empty.")
    label_issues: bool = Field(default=True, description="Find probable label errors with cleanlab.")
    shift_samples: int = Field(default=1000, ge=10, le=20_000, description="Examples per side of the shift test.")
    n_permutations: int = Field(default=500, ge=19, le=100_000, description="Permutations of the shift test.")
    n_clusters: int = Field(default=8, ge=0, le=100, description="Embedding clusters as slice candidates (0: none).")
    min_slice_size: int = Field(default=20, ge=2, description="Smallest slice searched (examples on the search half) or reported.")
    screen_alpha: float = Field(default=0.1, gt=0.0, le=1.0, description="Search-half p-value a candidate needs to be confirmed.")
    fdr: float = Field(default=0.05, gt=0.0, lt=1.0, description="False discovery rate of the confirmed slices (Benjamini–Hochberg).")
    n_listed: int = Field(default=20, ge=0, le=1000, description="Examples listed per finding in the record.")
    batch_size: int = Field(default=64, ge=1, description="Batch size for embeddings.")


class _Laps:
    """Logs the seconds each step took to the run's log (timings never go into the record)."""

    def __init__(self, ctx: SuiteContext) -> None:
        self.ctx, self.last = ctx, time.perf_counter()

    def __call__(self, step: str) -> None:
        now = time.perf_counter()
        self.ctx.logger.info("data: %s in %.2f s", step, now - self.last)
        self.last = now


def group_terms() -> dict[str, list[str]]:
    """Words naming groups (gender words; nationality, religion… from the identity lexicon)."""
    from harness.bias.counterfactual import GENDER_PAIRS
    from harness.bias.fillers import builtin_categories

    terms = {"female words": sorted({f for f, _ in GENDER_PAIRS}), "male words": sorted({m for _, m in GENDER_PAIRS})}
    for category in builtin_categories():
        if category.name in MENTION_CATEGORIES:
            found = {w for g, phrases in category.groups.items() if g not in LEFT_OUT_GROUPS for p in phrases for w in words(p)}
            terms[category.name.replace("_", " ")] = sorted(found - FRAME_WORDS)
    return terms


@registry.suites.register
class DataSuite(Suite[DataParams]):
    name = "data"
    version = "1.0"
    Params = DataParams
    description = "Contamination (exact + MinHash near duplicates), integrity, cleanlab label issues, shift test, confirmed weak slices"
    smoke_params: ClassVar[dict[str, Any]] = {"num_perm": 32, "shift_samples": 40, "n_permutations": 49, "n_clusters": 2, "min_slice_size": 3}
    capabilities = SuiteCapabilities(
        headline="contamination.share", outcome_kinds=["binary"],
        charts=[ChartSpec(kind="data", title="Data checks")],
    )  # fmt: skip

    def run(self, model: ModelAdapter, data: Dataset, ctx: SuiteContext) -> SuiteOutcome:
        p = self.params
        lap = _Laps(ctx)
        preds = ctx.predictions()
        row_of = {ident: i for i, ident in enumerate(preds.ids)}
        correct: list[bool | None] = [
            None if i not in row_of else bool(int(preds.predicted[row_of[i]]) == preds.labels[row_of[i]]) for i in data.ids
        ]
        found = seen.seen_data(ctx.bundle, data.split, model.info().model_card, p.seen_splits, p.seen_files)
        warnings = list(found.warnings)
        emb_all, how, ref = self._embeddings(model, data, found.reference, ctx.seed)
        lap("embeddings")
        matches = cont.find_matches(
            data.texts, found.sets, cont.ContaminationParams(p.near_threshold, p.num_perm, p.shingle_size, 1, p.embedding_threshold),
            embed=lambda texts: embeddings(model, texts, batch_size=p.batch_size, seed=ctx.seed)[0],
        )  # fmt: skip
        contam = cont.ContaminationResult(data.ids, matches, [s.name for s in found.sets])
        lap("contamination")
        integ = self._integrity(model, data)
        issues, checked = self._label_issues(data, preds, row_of, set(contam.contaminated_ids))
        lap("integrity and label issues")
        mmd, features = self._shift(data, emb_all, ref, found.reference, ctx)
        lap("shift")
        weak = self._slices(data, correct, emb_all[: len(data)] if emb_all is not None else None, ctx.seed)
        lap("slices")

        metrics = contam.metrics() + integ.metrics() + issues.metrics()
        if mmd is not None and features is not None and ref is not None:
            metrics += shift.shift_metrics(mmd, features, ref.name)
        metrics += self._slice_metrics(weak, correct)
        warnings += self._warnings(contam, found, issues, mmd, ref, weak) + integ.warnings
        self._write_rows(ctx, data, correct, contam, issues, checked, integ, weak)
        details = self._details(data, found, contam, integ, (issues, checked), (mmd, features, how), weak, correct)
        return SuiteOutcome(metrics=metrics, warnings=warnings, details=details, example_order=list(data.ids))

    # ------------------------------------------------------------ parts

    def _embeddings(self, model: ModelAdapter, data: Dataset, ref: cont.SeenSet | None, seed: int) -> tuple[Any, str, Any]:
        """Embeddings of the whole split, then of a sample of the reference (computed together)."""
        sample = ref
        if ref is not None and len(ref.ids) > self.params.shift_samples:
            keep = sorted(np.random.default_rng(seed).permutation(len(ref.ids))[: self.params.shift_samples].tolist())
            sample = cont.SeenSet(ref.name, [ref.ids[i] for i in keep], [ref.texts[i] for i in keep])
        texts = list(data.texts) + (list(sample.texts) if sample is not None else [])
        if not texts:
            return None, "none", sample
        emb, how = embeddings(model, texts, batch_size=self.params.batch_size, seed=seed)
        return emb, how, sample

    def _integrity(self, model: ModelAdapter, data: Dataset) -> integrity.IntegrityResult:
        tokenize = getattr(model, "tokenize", None)
        lengths, truncated = None, None
        if tokenize is not None and len(data):
            ids, truncated = tokenize(data.texts)
            lengths = [len(r) for r in ids]
        return integrity.check_integrity(
            data.texts, data.labels, data.label_names, near_empty_chars=self.params.near_empty_chars,
            token_lengths=lengths, truncated=truncated,
        )  # fmt: skip

    def _label_issues(self, data: Dataset, preds: Any, row_of: dict[str, int], contaminated: set[str]) -> tuple[label_issues.LabelIssues, list[int]]:
        """cleanlab on the examples with a prediction that were not seen in training."""
        checked = [i for i, ident in enumerate(data.ids) if ident in row_of and ident not in contaminated]
        if not self.params.label_issues:
            return label_issues.LabelIssues(False, 0, [], [], [], []), []
        probs = preds.probabilities[[row_of[data.ids[i]] for i in checked]] if checked else np.zeros((0, len(data.label_names)))
        return label_issues.find_issues([data.labels[i] for i in checked], probs), checked

    def _shift(self, data: Dataset, emb: Any, sample: cont.SeenSet | None, ref: cont.SeenSet | None, ctx: SuiteContext) -> tuple[Any, Any]:
        """MMD on the embedded samples; per-feature shifts against the whole reference."""
        if ref is None or sample is None or emb is None:
            return None, None
        n = len(data)
        take = np.sort(np.random.default_rng(ctx.seed + 1).permutation(n)[: self.params.shift_samples])
        result = shift.mmd_test(emb[n:], emb[take], n_permutations=self.params.n_permutations, seed=ctx.seed)
        split = ctx.bundle.splits.get(ref.name) if ctx.bundle is not None else None
        ref_labels = list(split.labels) if split is not None and split.label_names == data.label_names else []
        features = shift.feature_shift(ref.texts, ref_labels, data.texts, data.labels, len(data.label_names), ctx.seed)
        return result, features

    def _slices(self, data: Dataset, correct: Sequence[bool | None], emb: Any, seed: int) -> slices.SliceResult:
        p = self.params
        found = slices.candidates(
            data.texts, data.labels, data.label_names, data.groups, group_terms=group_terms(),
            embeddings=emb, n_clusters=p.n_clusters, seed=seed,
        )  # fmt: skip
        params = slices.SliceParams(p.min_slice_size, p.screen_alpha, p.fdr, p.n_clusters, seed, p.n_listed)
        return slices.find_weak_slices(data.ids, correct, found, params)

    # ------------------------------------------------------------ outputs

    def _reported(self, weak: slices.SliceResult, correct: Sequence[bool | None]) -> list[tuple[slices.Candidate, int, int]]:
        """Candidates big enough to report: (candidate, correct, scored) over the whole split."""
        ok = np.array([c is True for c in correct])
        scored = np.array([c is not None for c in correct])
        out = []
        for cand in weak.candidates:
            n = int((cand.mask & scored).sum())
            if n >= self.params.min_slice_size:
                out.append((cand, int((cand.mask & ok).sum()), n))
        return out

    def _slice_metrics(self, weak: slices.SliceResult, correct: Sequence[bool | None]) -> list[Metric]:
        reported = self._reported(weak, correct)
        out = [
            Metric(name="slices.n_candidates", value=float(len(weak.candidates)), higher_is_better=None, description="Candidate slices defined."),
            Metric(name="slices.n_tested", value=float(len(weak.tested)), higher_is_better=None, description="Candidates weak on the search half, tested on the confirmation half."),
            Metric(name="slices.n_confirmed", value=float(len(weak.confirmed)), higher_is_better=False, description=f"Weak slices confirmed on held-out data (BH, FDR {weak.params.fdr})."),
        ]  # fmt: skip
        for cand, k, n in reported:
            out.append(proportion_metric(f"slice.{cand.slug}.accuracy", k, n, higher=True, description=f"Accuracy where the text {cand.description}" if cand.family == "text property" else f"Accuracy on {cand.description}."))
        for s in weak.confirmed:
            out.append(Metric(name=f"weak.{s['slug']}.accuracy", value=s["accuracy"], higher_is_better=True, ci_low=s["ci_low"], ci_high=s["ci_high"],
                              ci_method="wilson", n=s["n_confirm"], description=f"Confirmed weak slice ({s['description']}), on the confirmation half."))
            out.append(Metric(name=f"weak.{s['slug']}.gap", value=s["gap"], higher_is_better=True, ci_low=s["gap_ci_low"], ci_high=s["gap_ci_high"],
                              ci_method="newcombe", n=s["n_confirm"], description="Its accuracy minus the rest of the confirmation half's."))  # fmt: skip
        return out

    def _warnings(self, contam: cont.ContaminationResult, found: seen.Seen, issues: label_issues.LabelIssues, mmd: Any, ref: Any, weak: slices.SliceResult) -> list[str]:
        out = []
        k, n = len(contam.contaminated_ids), len(contam.ids)
        if not found.sets:
            out.append(MSG_NOT_SEEN)
        elif k:
            out.append(MSG_CONTAMINATED.format(share=k / n, k=k, n=n, sources=", ".join(found.how.split(" (")[:1])))
        out += issues.warnings
        if issues.checked and issues.indices:
            out.append(MSG_LABEL_ISSUES.format(k=len(issues.indices)))
        if mmd is not None and mmd.p_value is not None and mmd.p_value <= 0.05:
            out.append(MSG_SHIFT.format(reference=ref.name, p=mmd.p_value))
        for s in weak.confirmed:
            out.append(MSG_WEAK.format(slug=s["slug"], description=s["description"], acc=s["accuracy"], low=s["ci_low"], high=s["ci_high"],
                                       n=s["n_confirm"], rest=s["rest_accuracy"] or 0.0, q=s["q"]))  # fmt: skip
        return out

    def _write_rows(self, ctx: SuiteContext, data: Dataset, correct: Sequence[bool | None], contam: cont.ContaminationResult,
                    issues: label_issues.LabelIssues, checked: list[int], integ: integrity.IntegrityResult, weak: slices.SliceResult) -> None:  # fmt: skip
        flagged = {checked[i] for i in issues.indices}
        checked_set = set(checked) if issues.checked else set()
        repeats = {i for g in integ.duplicate_groups for i in g[1:]}
        near_empty = set(integ.near_empty)
        members = [(cand.slug, cand.mask) for cand, _, _ in self._reported(weak, correct)]
        confirmed = {s["slug"] for s in weak.confirmed}
        members += [(c.slug, c.mask) for c in weak.candidates if c.slug in confirmed and c.slug not in {m for m, _ in members}]
        for i, ident in enumerate(data.ids):
            m = contam.matches[i]
            row: dict[str, Any] = {
                "id": ident, "half": "confirm" if weak.half[i] else "search", "correct": correct[i],
                "contamination": None if m is None else m.kind,
                "match": None if m is None else {"split": m.source, "id": m.id, "similarity": round(m.similarity, 4)},
                "label_issue": (i in flagged) if i in checked_set else None,
                "duplicate": i in repeats, "near_empty": i in near_empty,
            }  # fmt: skip
            row.update({f"in:{slug}": True for slug, mask in members if mask[i]})
            ctx.examples.append(row)

    def _details(self, data: Dataset, found: seen.Seen, contam: cont.ContaminationResult, integ: integrity.IntegrityResult,
                 labels: tuple[label_issues.LabelIssues, list[int]], shifted: tuple[Any, Any, str], weak: slices.SliceResult,
                 correct: Sequence[bool | None]) -> dict[str, Any]:  # fmt: skip
        p = self.params
        (issues, checked), (mmd, features, how) = labels, shifted
        texts = {s.name: dict(zip(s.ids, s.texts, strict=True)) for s in found.sets}
        names = [data.label_names[y] for y in data.labels]
        kinds = {"exact": ["exact"], "near": ["near", "embedding"], "any": ["exact", "near", "embedding"]}
        per_example: dict[str, Any] = {
            "contamination.share": {"field": "contamination", "positive": kinds["any"]},
            "contamination.exact_share": {"field": "contamination", "positive": kinds["exact"]},
            "contamination.near_share": {"field": "contamination", "positive": kinds["near"]},
            "integrity.duplicate_share": {"field": "duplicate"},
            "integrity.near_empty_share": {"field": "near_empty"},
        }
        if issues.checked:
            per_example["label_issues.share"] = {"field": "label_issue"}
        for cand, _, _ in self._reported(weak, correct):
            per_example[f"slice.{cand.slug}.accuracy"] = {"field": "correct", "where": {f"in:{cand.slug}": True}}
        for s in weak.confirmed:
            per_example[f"weak.{s['slug']}.accuracy"] = {"field": "correct", "where": {f"in:{s['slug']}": True, "half": "confirm"}}
        return {
            "per_example": per_example,
            "subsets": {"clean": {"description": "examples not found in data the model saw", "exclude_ids": contam.contaminated_ids}} if found.sets else {},
            "seen": {"how": found.how, "sets": [{"name": s.name, "n": len(s.ids)} for s in found.sets]},
            "contamination": {
                "threshold": p.near_threshold, "shingle_size": p.shingle_size, "num_perm": p.num_perm, "embedding_threshold": p.embedding_threshold,
                "examples": contam.examples(data.texts, lambda m: texts[m.source][m.id], p.n_listed),
            },
            "integrity": integ.details(data.ids, data.texts, names, p.n_listed),
            "label_issues": {
                "checked": issues.checked, "n_checked": issues.n, "on": "examples with a prediction not found in data the model saw",
                "examples": label_issues.issue_rows(issues, [data.ids[i] for i in checked], [data.texts[i] for i in checked],
                                                    [data.labels[i] for i in checked], data.label_names, p.n_listed),
            },
            "shift": None if mmd is None or found.reference is None else shift.shift_details(mmd, features, found.reference.name, how),
            "slices": {
                "n_candidates": len(weak.candidates), "fdr": p.fdr, "screen_alpha": p.screen_alpha, "min_size": p.min_slice_size,
                "confirmed": weak.confirmed,
                "tested": [{"slug": t["slug"], "description": t["description"], "p_search": t["search"]["p"], "p_confirm": t["confirm"]["p"], "q": t["confirm"]["q"]} for t in weak.tested],
                "candidates": [{"slug": c.slug, "description": c.description, "family": c.family, "n": int(c.mask.sum())} for c in weak.candidates],
            },
        }  # fmt: skip
