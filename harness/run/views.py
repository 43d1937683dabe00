"""Views: the run's other evaluation sets and subsets, scored by every suite that can score any set.

Two kinds of view:

* **extra evaluation sets** (``dataset.extra_eval``): loaded with the run's inputs, over the main
  label set, and predicted once into ``extra_eval/<name>.jsonl`` (append-only and resumable like
  ``predictions.jsonl``); their identity (source, split, digest, Hub commit) is in the record;
* **subsets of the evaluation split** that a suite publishes in its ``details["subsets"]`` as
  ``{name: {"description": str, "exclude_ids": [id, ...]}}`` (the data suite publishes
  ``clean``: the examples found in no split the model was trained or selected on).

Once every suite has run, each suite whose capabilities say ``prediction_metrics`` (its figures
are functions of the predictions alone, so scoring another set is cheap and exact) is run again
on each view, and its record gains ``eval.<name>.<metric>`` / ``subset.<name>.<metric>`` for
every metric of that run, ``….gap.<metric>`` (view minus main split, MOVER interval) for its
top-level metrics with an interval, and a warning when a gap's interval excludes 0. No suite is
named here: a plugin suite that declares ``prediction_metrics`` gets the same.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import registry
from harness.config import RunConfig
from harness.data import Dataset, DatasetBundle
from harness.datasources import load_eval_set
from harness.errors import ConfigError, HarnessError
from harness.predictions import Predictions
from harness.records import EvalSetInfo, Metric, SuiteRecord
from harness.run.predictions import PREDICTION_CHUNK, as_predictions, predict_rows
from harness.stats import Interval
from harness.stats.differences import mover_difference
from harness.store import ExampleLog, read_jsonl

EXTRA_DIR = "extra_eval"
VIEW_PREFIXES = ("eval.", "subset.")
MSG_EVAL_SET_CHANGED = (
    "{run_dir}: holds partial results of the same config but extra evaluation set {name!r} has "
    "digest {there}… there, {now}… now; pass --force to start over"
)
MSG_GAP = (
    "{suite}.{metric} on {what} is {value} against {main} on the main split: the gap {gap} "
    "[{low}, {high}] excludes 0 ({direction} there)"
)
MSG_VIEW_FAILED = "{suite} could not score {what}: {error}"
MSG_EMPTY_SUBSET = "subset {name!r} published by {suite} is empty (every example excluded); not scored"


@dataclass(frozen=True)
class EvalSet:
    """One extra evaluation set of a run."""

    name: str
    data: Dataset
    bundle: DatasetBundle

    @property
    def predictions_file(self) -> str:
        return f"{EXTRA_DIR}/{self.name}.jsonl"

    def info(self) -> EvalSetInfo:
        return EvalSetInfo(
            name=self.name, source=self.bundle.source, split=self.data.split, n=len(self.data),
            sha256=self.data.digest(), revision=self.bundle.revision, predictions_file=self.predictions_file,
        )  # fmt: skip


def load_eval_sets(config: RunConfig, label_names: Sequence[str], base_dir: Path) -> dict[str, EvalSet]:
    """Every ``dataset.extra_eval`` set, in the run file's order."""
    out = {}
    for name, spec in config.dataset.extra_eval.items():
        data, bundle = load_eval_set(name, spec, config.dataset, label_names, base_dir)
        out[name] = EvalSet(name, data, bundle)
    return out


def check_eval_sets(previous: Any, run_dir: Path, sets: Mapping[str, EvalSet]) -> None:
    """A resumed run keeps extra-set predictions only for the same examples (digest)."""
    if previous is None:
        return
    recorded = {e.name: e.sha256 for e in previous.dataset.extra_eval}
    for name, s in sets.items():
        there, now = recorded.get(name), s.data.digest()
        if there is not None and there != now:
            raise ConfigError(MSG_EVAL_SET_CHANGED.format(run_dir=run_dir, name=name, there=there[:12], now=now[:12]))


def predict_eval_sets(run: Any, progress: Callable[[str, int], Callable[[int, int], None]]) -> None:
    """Predict each extra set of ``run`` (a ``RunState``) in fixed chunks, appending finished
    chunks; a resumed run skips done ones, after checking the sets are the ones it started on."""
    run_dir, model, sets = run.folder.path, run.inputs.model, run.inputs.eval_sets
    check_eval_sets(run.folder.previous, run_dir, sets)
    for s in sets.values():
        log = ExampleLog(run_dir / s.predictions_file).open()
        report = progress(f"predict {s.name}", len(s.data))
        try:
            for start in range(0, len(s.data), PREDICTION_CHUNK):
                end = min(start + PREDICTION_CHUNK, len(s.data))
                if not all(i in log.done for i in s.data.ids[start:end]):
                    log.extend(predict_rows(model, s.data, start, end))
                report(end, len(s.data))
            log.rewrite_in_order(list(s.data.ids))
        finally:
            log.close()


# ------------------------------------------------------------------ views


@dataclass(frozen=True)
class View:
    kind: str  # "eval" or "subset"
    name: str
    description: str
    data: Dataset
    predictions: Predictions

    @property
    def prefix(self) -> str:
        return f"{self.kind}.{self.name}."

    @property
    def what(self) -> str:
        return f"extra evaluation set {self.name!r}" if self.kind == "eval" else f"subset {self.name!r} ({self.description})"


def _restrict(preds: Predictions, keep: set[str]) -> Predictions:
    rows = [i for i, ident in enumerate(preds.ids) if ident in keep]
    return Predictions(
        ids=tuple(preds.ids[i] for i in rows), labels=tuple(preds.labels[i] for i in rows),
        probabilities=preds.probabilities[rows], errors={k: v for k, v in preds.errors.items() if k in keep},
    )  # fmt: skip


def subset_views(suites: Sequence[SuiteRecord], data: Dataset, preds: Predictions) -> tuple[list[View], list[str]]:
    """The subsets the run's suites published, as views (and warnings for empty ones)."""
    views, warnings = [], []
    for record in suites:
        published = record.details.get("subsets") if record.status == "ok" else None
        for name, spec in sorted((published or {}).items()):
            excluded = set(map(str, spec.get("exclude_ids") or [])) & set(data.ids)
            if not excluded:
                continue  # the subset is the main split itself: its figures are the main ones
            idx = [i for i, ident in enumerate(data.ids) if ident not in excluded]
            if not idx:
                warnings.append(MSG_EMPTY_SUBSET.format(name=name, suite=record.name))
                continue
            subset = data.subset(idx)
            views.append(View("subset", name, str(spec.get("description", "")), subset, _restrict(preds, set(subset.ids))))
    return views, warnings


def eval_views(sets: Mapping[str, EvalSet], run_dir: Path) -> list[View]:
    out = []
    for s in sets.values():
        rows = {r["id"]: r for r in read_jsonl(run_dir / s.predictions_file)}
        preds = as_predictions([rows[i] for i in s.data.ids], s.data.label_names)
        out.append(View("eval", s.name, s.bundle.source, s.data, preds))
    return out


def _is_view_metric(name: str) -> bool:
    return name.startswith(VIEW_PREFIXES)


def _gap(record: SuiteRecord, main: Metric, other: Metric, view: View) -> tuple[Metric, str | None]:
    interval = mover_difference(
        other.value, Interval(other.ci_low, other.ci_high, ""), main.value, Interval(main.ci_low, main.ci_high, "")
    )
    nested = view.kind == "subset"
    gap = None if other.value is None or main.value is None else other.value - main.value
    metric = Metric(
        name=f"{view.prefix}gap.{main.name}", value=gap, higher_is_better=None, ci_low=interval.low,
        ci_high=interval.high, ci_method="mover (conservative: the subset is part of the main split)" if nested else "mover",
        n=other.n, unit=main.unit, description=f"{main.name} on {view.what} minus on the main split.",
    )  # fmt: skip
    if gap is None or interval.low is None or interval.high is None or interval.low <= 0 <= interval.high:
        return metric, None
    worse = main.higher_is_better is not None and (gap < 0) == main.higher_is_better
    direction = "worse" if worse else ("better" if main.higher_is_better is not None else "different")
    return metric, MSG_GAP.format(
        suite=record.name, metric=main.name, what=view.what, value=f"{other.value:.4g}", main=f"{main.value:.4g}",
        gap=f"{gap:+.4g}", low=f"{interval.low:+.4g}", high=f"{interval.high:+.4g}", direction=direction,
    )  # fmt: skip


def view_metrics(record: SuiteRecord, view: View, metrics: Sequence[Metric]) -> tuple[list[Metric], list[str]]:
    """The view's metrics (prefixed), the gaps of the top-level interval metrics, and flags."""
    out = [m.model_copy(update={"name": view.prefix + m.name}) for m in metrics]
    flags = []
    scored = {m.name: m for m in metrics}
    for main in record.metrics:
        other = scored.get(main.name)
        if other is None or "." in main.name or _is_view_metric(main.name) or main.ci_low is None:
            continue
        gap, flag = _gap(record, main, other, view)
        out.append(gap)
        if flag:
            flags.append(flag)
    return out, flags


def score_view(suite: Any, view: View, run: Any, logger: logging.Logger) -> tuple[list[Metric], list[str]]:
    """Run ``suite`` on the view's data and predictions; its per-example rows are discarded."""
    from harness.run.inputs import seed_everything
    from harness.run.suites import suite_context

    with tempfile.TemporaryDirectory(prefix="harness-view-") as tmp, ExampleLog(Path(tmp) / "rows.jsonl") as log:
        ctx = suite_context(
            run_dir=Path(tmp), examples=log, inputs=run.inputs, seed=run.config.seed, logger=logger,
            predictions=lambda: view.predictions,
        )  # fmt: skip
        seed_everything(run.config.seed)
        outcome = suite.run(run.inputs.model, view.data, ctx)
    return outcome.metrics, [f"[{view.kind} {view.name}] {w}" for w in outcome.warnings]


def apply_views(run: Any, suite_params: Sequence[Any], logger: logging.Logger) -> None:
    """Score every view with every ``prediction_metrics`` suite of ``run`` (a ``RunState``),
    replacing what an earlier attempt added, so that resuming gives the same record."""
    data = run.inputs.eval_data
    from harness.run.predictions import shared_predictions

    views = eval_views(run.inputs.eval_sets, run.folder.path)
    subsets, empty = subset_views(run.suites, data, shared_predictions(run.folder.path, data))
    views += subsets
    if not views and not empty:
        return
    for i, (spec, params) in enumerate(zip(run.config.suites, suite_params, strict=True)):
        record: SuiteRecord = run.suites[i]
        caps = record.caps()
        if record.status != "ok" or not caps.prediction_metrics:
            continue
        base = _without_views(record)
        metrics, warnings = list(base.metrics), list(base.warnings)
        added: list[str] = list(empty)
        suite = registry.suites.get(spec.name)(params=params)
        for view in views:
            try:
                scored, notes = score_view(suite, view, run, logger)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one view a suite cannot score must not cost the run
                error = exc.message if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
                logger.exception("suite %s on %s failed", record.name, view.what)
                added.append(MSG_VIEW_FAILED.format(suite=record.name, what=view.what, error=error))
                continue
            more, flags = view_metrics(base, view, scored)
            metrics += more
            added += flags + notes
        details = dict(base.details)
        details["views"] = {
            "sets": [{"kind": v.kind, "name": v.name, "n": len(v.data), "description": v.description} for v in views],
            "warnings": added,
        }
        run.suites[i] = base.model_copy(update={"metrics": metrics, "warnings": warnings + added, "details": details})


def _without_views(record: SuiteRecord) -> SuiteRecord:
    previous = record.details.get("views") or {}
    added = set(previous.get("warnings") or [])
    details = {k: v for k, v in record.details.items() if k != "views"}
    return record.model_copy(update={
        "metrics": [m for m in record.metrics if not _is_view_metric(m.name)],
        "warnings": [w for w in record.warnings if w not in added], "details": details,
    })  # fmt: skip
