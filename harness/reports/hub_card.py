"""``harness export model-card RUN``: a Hugging Face model card (README.md) from a run's record.

The YAML front matter carries the Hub's ``model-index`` (one result per suite: task, dataset
with its split and revision — the Hub commit it was loaded at, else the split's sha256 —,
metrics with their values), so the Hub, Papers with Code and ``huggingface_hub.ModelCard`` read
the run's results where users look for them.
Values are the record's floats, unrounded; intervals, n and methods sit in the card's tables,
since ``model-index`` has no field for them. Every metric is marked ``verified: false`` (the Hub
reserves ``true`` for its own evaluations).

Which metrics: a suite scored from the predictions (accuracy) gives every directed aggregate
metric (not the per-class ones); every other suite gives its headline metrics (the declared
headline in each of its variants, e.g. each attack recipe). ``every_metric`` gives all directed,
defined metrics instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from harness import __version__
from harness.records import Metric, RunRecord, SuiteRecord
from harness.render.numbers import fmt, fmt_ci
from harness.reports.sections import headline
from harness.reports.view import RunView, load_view
from harness.store import atomic_write_text

TASK = {"type": "text-classification", "name": "Text Classification"}
# Metric names the Hub's evaluate library knows, with their arguments.
HUB_TYPES: dict[str, tuple[str, dict[str, Any] | None]] = {
    "accuracy": ("accuracy", None),
    "f1_macro": ("f1", {"average": "macro"}),
    "precision_macro": ("precision", {"average": "macro"}),
    "recall_macro": ("recall", {"average": "macro"}),
    "brier": ("brier_score", None),
    "nll": ("log_loss", None),
}
PER_CLASS = re.compile(r"^(precision|recall|f1)\.")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")
CARD_FOLDER_SUFFIX = ".model-card"
MSG_NO_METRICS = "{run}: the record has no defined, directed metric to export"


def md(text: object) -> str:
    """Text for a markdown cell: HTML and markdown syntax escaped, one line."""
    value = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", " ".join(value.split()))


def _exported(suite: SuiteRecord, every_metric: bool) -> list[Metric]:
    usable = [m for m in suite.metrics if m.value is not None and m.higher_is_better is not None]
    if every_metric:
        return usable
    if suite.caps().prediction_metrics:
        return [m for m in usable if not PER_CLASS.match(m.name)]
    hint = suite.caps().headline
    chosen = [m for m in usable if hint and (m.name == hint or m.name.endswith("." + hint))]
    if not chosen:
        top = headline(suite)
        chosen = [top] if top is not None and top in usable else []
    return chosen


def _metric_entry(suite: SuiteRecord, metric: Metric) -> dict[str, Any]:
    hub = HUB_TYPES.get(metric.name) if suite.caps().prediction_metrics else None
    entry: dict[str, Any] = {
        "type": hub[0] if hub else f"{suite.name}.{metric.name}",
        "value": metric.value,
        "name": f"{suite.name}: {metric.name}",
        "verified": False,
    }
    if hub and hub[1]:
        entry["args"] = dict(hub[1])
    return entry


def model_index(record: RunRecord, *, every_metric: bool = False) -> list[dict[str, Any]]:
    """The ``model-index`` of a record: one result per suite that has metrics to export."""
    split = record.dataset.split(record.dataset.eval_split)
    dataset: dict[str, Any] = {
        "type": record.dataset.name,
        "name": f"{record.dataset.name} ({record.dataset.eval_split})",
        "split": record.dataset.eval_split,
    }
    if record.dataset.revision:  # the Hub commit it was loaded at, as the Hub means the field
        dataset["revision"] = record.dataset.revision
    elif split is not None:  # else the exact content: the split's sha256
        dataset["revision"] = split.sha256
    results = []
    for suite in record.suites:
        if suite.status != "ok":
            continue
        metrics = [_metric_entry(suite, m) for m in _exported(suite, every_metric)]
        if metrics:
            # No "source": the Hub requires a URL with it, and a run folder has none.
            results.append({"task": dict(TASK), "dataset": dict(dataset), "metrics": metrics})
    return [{"name": record.model.name, "results": results}]


def _front_matter(record: RunRecord, index: list[dict[str, Any]]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "library_name": "transformers",
        "pipeline_tag": "text-classification",
        "tags": ["text-classification", "harness"],
    }
    base = ((record.config.get("finetune") or {}).get("base") or {}).get("hub")
    if isinstance(base, str):
        meta["base_model"] = base
    meta["model-index"] = index
    return meta


def _results_table(record: RunRecord, every_metric: bool) -> list[str]:
    lines = ["| Suite | Metric | Value | 95% CI | n | Better |", "|---|---|---|---|---|---|"]
    for suite in record.suites:
        for m in _exported(suite, every_metric) if suite.status == "ok" else []:
            better = {True: "higher", False: "lower", None: ""}[m.higher_is_better]
            lines.append(
                f"| {md(suite.name)} | {md(m.name)} | {fmt(m.value)} | "
                f"{md(fmt_ci(m.ci_low, m.ci_high))} | {fmt(m.n)} | {better} |"
            )
    return lines


def _provenance(view: RunView) -> list[str]:
    record, prov = view.record, view.record.provenance
    split = record.dataset.split(record.dataset.eval_split)
    facts = [
        ("Run", record.run_id),
        ("Record sha256", view.record_sha256),
        ("Model digest", record.model.digest),
        ("Evaluation split", f"{record.dataset.eval_split} (n={split.n}, sha256 {split.sha256})" if split else record.dataset.eval_split),
        ("Config sha256", prov.config_sha256),
        ("harness", prov.harness_version),
        ("Device", prov.device),
        ("Started (UTC)", prov.started_utc),
    ]
    return [f"- **{md(k)}**: {md(v)}" for k, v in facts]


def _limitations(record: RunRecord) -> list[str]:
    lines = []
    for suite in record.suites:
        if suite.status != "ok":
            lines.append(f"- Suite {md(suite.name)} {md(suite.status)}: {md(suite.error or '')}")
        lines += [f"- {md(suite.name)}: {md(d)}" for d in suite.departures]
    n_warn = sum(len(s.warnings) for s in record.suites)
    if n_warn:
        lines.append(f"- {n_warn} recorded warning(s); see the audit report (`harness report`).")
    return lines or ["- None recorded."]


def render_card(view: RunView, *, every_metric: bool = False) -> str:
    record = view.record
    index = model_index(record, every_metric=every_metric)
    if not index[0]["results"]:
        from harness.errors import RecordError

        raise RecordError(MSG_NO_METRICS.format(run=view.run_dir))
    front = yaml.safe_dump(_front_matter(record, index), sort_keys=False, allow_unicode=True)
    description = record.config.get("description") or (record.model.model_card or {}).get("intended_use")
    body = [
        f"# {md(record.model.name)}",
        "",
        md(description) if description else "A text classifier evaluated with harness.",
        "",
        f"Evaluated on **{md(record.dataset.name)}**, split `{md(record.dataset.eval_split)}`, "
        f"labels {', '.join(f'`{md(n)}`' for n in record.dataset.label_names)}.",
        "",
        "## Evaluation results",
        "",
        *_results_table(record, every_metric),
        "",
        "## Limitations and departures",
        "",
        *_limitations(record),
        "",
        "## Provenance",
        "",
        *_provenance(view),
        "",
        f"Generated by harness {__version__} (`harness export model-card`). "
        "Replay the run with `harness rerun RUN_DIR`; check it with `harness verify RUN_DIR`.",
        "",
    ]
    return f"---\n{front}---\n\n" + "\n".join(body)


def write_card(run_dir: Path, out: Path | None = None, *, every_metric: bool = False) -> Path:
    """Write the card (default: ``<run folder>.model-card/README.md`` beside the run folder:
    outside it, so the folder still matches its manifest, and named as the Hub expects)."""
    view = load_view(run_dir)
    folder = view.run_dir
    target = out or folder.with_name(folder.name + CARD_FOLDER_SUFFIX) / "README.md"
    atomic_write_text(target, render_card(view, every_metric=every_metric))
    return target
