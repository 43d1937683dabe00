"""Report sections that read the record only: summary, model card, suites' tables. Charts live in
``suite_charts``, example tables in ``worst``, limitations and provenance in ``appendix``.

Every function returns ``Markup`` built with ``el``; data strings are never formatted into HTML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.records import Metric, ModelInfo, RunRecord, SuiteRecord, canonical_json
from harness.render.html import Markup, el, join
from harness.render.numbers import MISSING, fmt, fmt_ci
from harness.reports import card_view
from harness.reports.findings import metric_anchor
from harness.reports.view import RunView

MAX_NESTED_ROWS = 200  # long lists in a model card (training logs) are cut, with a note


def section(ident: str, title: str, *body: Any) -> Markup:
    return el("section", el("h2", title), *body, id=ident)


def kv_table(pairs: Sequence[tuple[str, Any]], cls: str = "kv") -> Markup:
    return el(
        "table",
        el(
            "tbody", [el("tr", el("th", k, scope="row"), el("td", value_html(v))) for k, v in pairs]
        ),
        cls=cls,
    )


def value_html(value: Any, depth: int = 0) -> Markup | str:
    """Any JSON value as HTML: scalars as text, mappings as nested tables, row lists as tables."""
    if isinstance(value, Markup):
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return fmt(value)
    if isinstance(value, str):
        return value
    if depth >= 4:
        return el("code", canonical_json(value).strip())
    if isinstance(value, Mapping):
        return kv_table(
            [
                (str(k), value_html(v, depth + 1))
                for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))
            ]
        )
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, Mapping) for v in value):
            return rows_table(list(value), depth + 1)
        if all(v is None or isinstance(v, (str, int, float, bool)) for v in value):
            return ", ".join(fmt(v) if not isinstance(v, str) else v for v in value)
        return el("ul", [el("li", value_html(v, depth + 1)) for v in value])
    return str(value)


def rows_table(rows: list[Mapping[str, Any]], depth: int = 0) -> Markup:
    # Columns in first-seen order: schema order for model dumps, sorted for canonical JSON.
    columns = list(dict.fromkeys(str(k) for row in rows for k in row))
    shown = rows[:MAX_NESTED_ROWS]
    note = (
        el("p", f"{len(rows) - len(shown)} more rows not shown.", cls="muted")
        if len(rows) > len(shown)
        else None
    )
    head = el("thead", el("tr", [el("th", c, scope="col") for c in columns]))
    body = el(
        "tbody",
        [el("tr", [el("td", value_html(row.get(c), depth)) for c in columns]) for row in shown],
    )
    return join([el("table", head, body, cls="data"), note])


# ------------------------------------------------------------------ summary


def suite_anchor(record: RunRecord, index: int) -> str:
    """``suite-<name>``, with the position appended when a suite appears more than once."""
    name = record.suites[index].name
    repeated = sum(s.name == name for s in record.suites) > 1
    return f"suite-{name}-{index}" if repeated else f"suite-{name}"


def headline(suite: SuiteRecord) -> Metric | None:
    """The figure a reader looks for first: the suite's declared headline (matched as the metric
    name or its last component), else its first metric with an interval, else its first."""
    if not suite.metrics:
        return None
    defined = [m.name for m in suite.metrics if m.value is not None]
    name = suite.caps().headline_metric(defined)
    if name is not None:
        return suite.metric(name)
    return next((m for m in suite.metrics if m.ci_low is not None), suite.metrics[0])


VERDICTS = {
    "complete": "Complete: every suite in the run file finished.",
    "incomplete": (
        "Incomplete: the run stopped before every suite finished; "
        "figures below cover only what ran."
    ),
    "failed": "Failed: the run ended with an error; treat every figure below as partial.",
}


def _summary_lines(record: RunRecord) -> list[str]:
    """What finished, what failed, and how many warnings and departures there are."""
    errors = [s for s in record.suites if s.status == "error"]
    skipped = [s for s in record.suites if s.status == "skipped"]
    finished = [s for s in record.suites if s.status == "ok"]
    n_warn = sum(len(s.warnings) for s in record.suites)
    n_dep = sum(len(s.departures) for s in record.suites)
    return [
        f"{len(finished)} of {len(record.suites)} suites finished"
        + (f"; {len(errors)} failed ({', '.join(s.name for s in errors)})" if errors else "")
        + (f"; {len(skipped)} skipped ({', '.join(s.name for s in skipped)})" if skipped else "")
        + ".",
        f"{n_warn} recorded warning(s) and {n_dep} departure(s) from reference methods "
        "(see Limitations and departures).",
    ]


def _summary_facts(record: RunRecord) -> list[tuple[str, Any]]:
    split = record.dataset.split(record.dataset.eval_split)
    return [
        (
            "Model",
            f"{record.model.name} ({record.model.source}), sha256 {record.model.digest[:16]}…",
        ),
        (
            "Evaluation data",
            f"{record.dataset.name}, split {record.dataset.eval_split!r}"
            + (f", {split.n} examples" if split else ""),
        ),
        (
            "Run",
            f"{record.run_id}, seed {record.provenance.seed}, device {record.provenance.device}",
        ),
    ]


def headline_table(record: RunRecord) -> Markup:
    """One row per suite: status and its headline figure with interval and n."""
    head = el(
        "tr",
        [el("th", c, scope="col") for c in ("Suite", "Status", "Headline", "Value", "95% CI", "n")],
    )
    rows = []
    for index, suite in enumerate(record.suites):
        metric = headline(suite)
        rows.append(
            el(
                "tr",
                el("td", el("a", suite.name, href=f"#{suite_anchor(record, index)}")),
                el("td", el("span", suite.status, cls=f"badge {suite.status}")),
                el("td", metric.name if metric else MISSING),
                el("td", fmt(metric.value) if metric else MISSING, cls="num"),
                el("td", fmt_ci(metric.ci_low, metric.ci_high) if metric else MISSING, cls="num"),
                el("td", fmt(metric.n) if metric else MISSING, cls="num"),
            )
        )
    return el("table", el("thead", head), el("tbody", rows), cls="data")


def summary(view: RunView) -> Markup:
    record = view.record
    errors = any(s.status == "error" for s in record.suites)
    status_cls = "ok" if record.status == "complete" and not errors else "bad"
    return section(
        "summary",
        "Summary verdict",
        el(
            "p",
            el("span", record.status, cls=f"badge {status_cls}"),
            " ",
            VERDICTS[record.status],
            cls="verdict",
        ),
        el("ul", [el("li", line) for line in _summary_lines(record)]),
        kv_table(_summary_facts(record)),
        headline_table(record),
    )


# ------------------------------------------------------------------ model card


def _identity(model: ModelInfo) -> list[tuple[str, Any]]:
    identity: list[tuple[str, Any]] = [
        ("Name", model.name),
        ("Source", model.source),
        ("Location", card_view.shown_location(model)),
        ("Digest (sha256)", el("code", model.digest)),
        ("Parameters", model.n_parameters),
        ("Max length (tokens)", model.max_length),
        ("Precision", _precision_text(model)),
    ]
    if model.forward is not None:
        gap = model.forward_probe_max_abs_diff
        probe = (
            f" (probe: max |Δ logit| {gap:.1e} against the full forward)" if gap is not None else ""
        )
        identity.append(("Forward", f"{model.forward}{probe}"))
    return identity


def _precision_text(model: ModelInfo) -> str:
    """The precision that ran, why, and (reduced precision) its agreement with fp32."""
    found = model.precision or {}
    text = str(found.get("precision") or model.dtype)
    if found.get("reason"):
        text += f" ({found['reason']})"
    probe = found.get("agreement") or {}
    if probe.get("agreement") is not None:
        text += (f"; fp32 agreement {probe['agreement']:.2%} on {probe['n']} examples, "
                 f"max |Δp| {probe['max_abs_dp']:.1e}, accuracy Δ {probe['accuracy_delta']:+.2%}")
    if probe.get("warning"):
        text += f"; WARNING: {probe['warning']}"
    return text


def _training(model: ModelInfo, config: Mapping[str, Any]) -> list[Any]:
    """The model card's recipe, else the run file's fine-tuning stage, else why neither exists."""
    card = model.model_card or {}
    if card:
        shown = card_view.shown_card(card)
        rows = [(str(k), value_html(v)) for k, v in sorted(shown.items()) if k != "intended_use"]
        return [card_view.dev_curves(card), kv_table(rows)]
    if config.get("finetune"):
        note = el(
            "p",
            "Fine-tuned by this run; the record carries no model card, so the recipe "
            "below is the run file's fine-tuning stage.",
            cls="muted",
        )
        return [note, value_html(config["finetune"])]
    return [
        el(
            "p",
            f"Not fine-tuned by this harness: the model was loaded as-is from its "
            f"{model.source} ({model.location}). Its training data and recipe are not "
            "in the record.",
            cls="muted",
        )
    ]


def model_card(view: RunView) -> Markup:
    model, dataset, config = view.record.model, view.record.dataset, view.record.config
    card = model.model_card or {}
    intended = card.get("intended_use") or config.get("description")
    labels = el(
        "ol",
        [el("li", el("code", name)) for name in model.label_names or dataset.label_names],
        start="0",
        cls="labels",
    )
    parts: list[Any] = [
        el("h3", "Intended use"),
        el("p", intended)
        if intended
        else el(
            "p",
            "The record states no intended use (set 'description' in the run file, or "
            "'intended_use' in the fine-tuning model card).",
            cls="muted",
        ),
        el("h3", "Identity"),
        kv_table(_identity(model)),
        el("h3", "Label set"),
        el("p", "Index order, as the model outputs them:", cls="muted"),
        labels,
        el("h3", "Training data and recipe"),
        *_training(model, config),
    ]
    return section("model-card", "Model card", *parts)


# ------------------------------------------------------------------ suites


def metrics_table(metrics: Sequence[Metric], anchor: str | None = None) -> Markup:
    """The suite's metrics; with ``anchor`` each row has the id ``ANCHOR--METRIC`` (the
    findings link there)."""
    if not metrics:
        return el("p", "No metrics recorded.", cls="muted")
    head = el(
        "tr",
        [
            el("th", c, scope="col")
            for c in ("Metric", "Value", "95% CI", "Method", "n", "Unit", "Better")
        ],
    )
    rows = [
        el(
            "tr",
            el(
                "td",
                el("code", m.name),
                el("div", m.description, cls="desc") if m.description else None,
            ),
            el("td", fmt(m.value), cls="num"),
            el("td", fmt_ci(m.ci_low, m.ci_high), cls="num"),
            el("td", m.ci_method or MISSING),
            el("td", fmt(m.n), cls="num"),
            el("td", m.unit or ""),
            el("td", {True: "higher", False: "lower", None: MISSING}[m.higher_is_better]),
            id=None if anchor is None else metric_anchor(anchor, m.name),
        )
        for m in metrics
    ]
    return el("table", el("thead", head), el("tbody", rows), cls="data metrics")


def suite_header(suite: SuiteRecord) -> Markup:
    facts: list[tuple[str, Any]] = [
        ("Status", el("span", suite.status, cls=f"badge {suite.status}")),
        ("Version", suite.version),
        ("Wall time (s)", suite.wall_time_s),
        ("Per-example rows", suite.n_examples),
    ]
    if suite.error:
        facts.append(("Error", el("pre", suite.error)))
    return kv_table(facts)


def params_block(suite: SuiteRecord) -> Markup:
    return el(
        "details", el("summary", "Parameters (as run)"), el("pre", canonical_json(suite.params))
    )
