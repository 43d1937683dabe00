"""Findings first: one line in plain words per thing the run found, at the top of the report.

Each finding is one metric of the record: every suite's declared headline metrics
(``SuiteCapabilities.headline``, so a new suite needs no edit here; their limits are found by
the key matching rule below) and every other metric a threshold names exactly (by its name or
``suite.metric``). A line says what was measured, its value, 95% interval and n, and a
severity from declared thresholds, and links to the metric's row in the detail tables::

    major · robustness: pwws attack success rate is 0.7826 (95% CI [0.581, 0.9034], n = 23),
            worse than the major limit 0.5 (lower is better)              → evidence

Severity: ``major`` / ``minor`` when the value is worse than that limit (the metric's own
``higher_is_better`` says which side is worse) and its whole 95% interval is past the minor
limit; ``inconclusive`` when n is below ``min_n`` (default 30: too few examples to judge,
unless the whole interval is past a limit: a problem a small sample shows is still shown) or when the value is past a limit but its interval reaches back within
the limits (the data fit "no problem" as well); ``ok`` within the limits (said when the
interval reaches past them); ``info`` when no threshold applies. A suite that did not finish
is always ``major``.

Default thresholds (``DEFAULT_THRESHOLDS``; a key matches a metric as ``suite.metric``, as the
metric's name, or as its last dotted components), chosen as common review limits for a binary
sentiment classifier, not as universal truths — override them in the run file
(``report.findings``, see ``harness.report_config``):

====================================  ==========  ==========  ===================
metric                                minor       major       better
====================================  ==========  ==========  ===================
accuracy                              < 0.90      < 0.80      higher
f1_macro                              < 0.90      < 0.80      higher
ece (calibration error)               > 0.05      > 0.10      lower
attack_success_rate                   > 0.20      > 0.50      lower
flip_rate (invariance)                > 0.02      > 0.10      lower
demographic_parity_difference         > 0.05      > 0.10      lower
====================================  ==========  ==========  ===================
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from harness.errors import ConfigError
from harness.records import Metric, RunRecord, SuiteRecord
from harness.render.html import Markup, el
from harness.render.numbers import fmt, fmt_ci
from harness.report_config import FindingsConfig, Limits

Severity = Literal["major", "minor", "inconclusive", "ok", "info"]
ORDER: tuple[Severity, ...] = ("major", "minor", "inconclusive", "ok", "info")
FIRST = ("major", "minor", "inconclusive")  # listed; the rest is folded away
DEFAULT_THRESHOLDS: dict[str, Limits] = {
    "accuracy": Limits(minor=0.90, major=0.80),
    "f1_macro": Limits(minor=0.90, major=0.80),
    "ece": Limits(minor=0.05, major=0.10),
    "attack_success_rate": Limits(minor=0.20, major=0.50),
    "flip_rate": Limits(minor=0.02, major=0.10),
    "demographic_parity_difference": Limits(minor=0.05, major=0.10),
}
WHITESPACE = re.compile(r"\s")
MSG_BAD_CONFIG = "{run}: report.findings in the record's config does not validate: {problem}"


@dataclass(frozen=True)
class Finding:
    suite: str
    metric: Metric | None  # None: the suite did not finish
    severity: Severity
    text: str  # the plain-words line
    anchor: str  # the evidence: an id in the report


def metric_anchor(suite_anchor: str, metric_name: str) -> str:
    """The id of a metric's row in its suite's detail table (an id holds no whitespace)."""
    return suite_anchor + "--" + WHITESPACE.sub("_", metric_name)


def findings_config(record: RunRecord) -> FindingsConfig:
    raw = record.config.get("report") if isinstance(record.config, Mapping) else None
    section = raw.get("findings", {}) if isinstance(raw, Mapping) else {}
    try:
        return FindingsConfig.model_validate(section or {})
    except ValidationError as exc:
        problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(MSG_BAD_CONFIG.format(run=record.run_id, problem=problem)) from None


def _lookup(
    table: Mapping[str, Limits | None], suite: str, name: str
) -> tuple[bool, Limits | None]:
    """(found, limits) for the most specific key: suite.metric, the metric, its last parts."""
    parts = name.split(".")
    keys = [f"{suite}.{name}", name, *(".".join(parts[i:]) for i in range(1, len(parts)))]
    for key in keys:
        if key in table:
            return True, table[key]
    return False, None


def limits_for(config: FindingsConfig, suite: str, name: str) -> Limits | None:
    found, limits = _lookup(config.thresholds, suite, name)
    if found:
        return limits
    return _lookup(DEFAULT_THRESHOLDS, suite, name)[1] if config.defaults else None


def _named(config: FindingsConfig, suite: str, name: str) -> bool:
    tables: list[Mapping[str, Limits | None]] = [config.thresholds]
    if config.defaults:
        tables.append(DEFAULT_THRESHOLDS)
    return any(key in t for t in tables for key in (name, f"{suite}.{name}"))


def _worse(value: float, limit: float, higher_is_better: bool) -> bool:
    return value < limit if higher_is_better else value > limit


def judge(metric: Metric, limits: Limits | None, min_n: int) -> tuple[Severity, str]:
    """The severity of one metric and the words that say why."""
    better = metric.higher_is_better
    if limits is None or better is None or (limits.minor is None and limits.major is None):
        return "info", "no threshold declared"
    if metric.value is None:
        return "inconclusive", "no value was recorded"
    side = "higher" if better else "lower"
    limit = limits.minor if limits.minor is not None else limits.major
    best_end = metric.ci_high if better else metric.ci_low
    if metric.n is None or metric.n < min_n:
        n = "unknown" if metric.n is None else str(metric.n)
        # A problem shown by a small sample is still shown (its whole interval is past a
        # limit); the absence of one is not.
        for level in ("major", "minor"):
            level_limit = getattr(limits, level)
            if (
                best_end is not None
                and level_limit is not None
                and _worse(best_end, level_limit, better)
            ):
                return level, (  # type: ignore[return-value]
                    f"its whole 95% CI is past the {level} limit {fmt(level_limit)} "
                    f"({side} is better), even with only n = {n}"
                )
        return "inconclusive", f"too few examples to judge (n = {n}, fewer than {min_n})"
    for level in ("major", "minor"):
        level_limit = getattr(limits, level)
        if level_limit is not None and _worse(metric.value, level_limit, better):
            why = f"worse than the {level} limit {fmt(level_limit)} ({side} is better)"
            if best_end is not None and limit is not None and not _worse(best_end, limit, better):
                # The data are as compatible with "within limits" as with the problem.
                return "inconclusive", f"{why}, but its 95% CI reaches back within {fmt(limit)}"
            return level, why  # type: ignore[return-value]
    worst_end = metric.ci_low if better else metric.ci_high
    note = ""
    if worst_end is not None and limit is not None and _worse(worst_end, limit, better):
        note = f"; its 95% CI reaches past {fmt(limit)}"
    return "ok", f"within the limit {fmt(limit)} ({side} is better){note}"


def _words(name: str) -> str:
    return name.replace(".", " ").replace("_", " ")


def _line(suite: str, metric: Metric, why: str) -> str:
    ci = fmt_ci(metric.ci_low, metric.ci_high)
    facts = [f"95% CI {ci}"] if metric.ci_low is not None else []
    facts.append(f"n = {fmt(metric.n)}")
    return f"{suite}: {_words(metric.name)} is {fmt(metric.value)} ({', '.join(facts)}), {why}"


def collect(record: RunRecord, anchors: Sequence[str]) -> list[Finding]:
    """Every finding of the record, most severe first (then in the record's order)."""
    config = findings_config(record)
    out: list[Finding] = []
    for suite, anchor in zip(record.suites, anchors, strict=True):
        if suite.status != "ok":
            why = suite.error or f"status {suite.status}"
            out.append(
                Finding(suite.name, None, "major", f"{suite.name}: did not finish ({why})", anchor)
            )
            continue
        hint = suite.caps().headline
        for metric in suite.metrics:
            headline = hint is not None and (
                metric.name == hint or metric.name.endswith("." + hint)
            )
            # Headline metrics find their limits by suffix too; any other metric is a finding
            # only when a threshold names it exactly (else every "X.accuracy" would be one).
            if not headline and not _named(config, suite.name, metric.name):
                continue
            limits = limits_for(config, suite.name, metric.name)
            severity, why = judge(metric, limits, config.min_n)
            out.append(
                Finding(
                    suite.name,
                    metric,
                    severity,
                    _line(suite.name, metric, why),
                    metric_anchor(anchor, metric.name),
                )
            )
    return sorted(out, key=lambda f: ORDER.index(f.severity))  # stable: record order kept


def _item(finding: Finding) -> Markup:
    return el(
        "li",
        el("span", finding.severity, cls=f"sev sev-{finding.severity}"),
        " ",
        el("span", finding.text, cls="finding-text"),
        " ",
        el("a", "evidence", href=f"#{finding.anchor}", cls="evidence-link"),
        cls=f"finding finding-{finding.severity}",
    )


def _counts(found: Sequence[Finding]) -> str:
    counts = [(s, sum(f.severity == s for f in found)) for s in ORDER]
    return ", ".join(f"{n} {s}" for s, n in counts if n)


def section(record: RunRecord, anchors: Sequence[str]) -> Markup:
    """The "Findings" section: the major, minor and inconclusive lines, then the rest folded."""
    found = collect(record, anchors)
    first = [f for f in found if f.severity in FIRST]
    rest = [f for f in found if f.severity not in FIRST]
    config = findings_config(record)
    source = "the run file's report.findings" if config.thresholds else "the defaults"
    intro = el(
        "p",
        f"{len(found)} findings: {_counts(found) or 'none'}. Severity from the thresholds of "
        f"{source} (harness.reports.findings). Inconclusive: fewer than {config.min_n} "
        "examples, or a 95% CI that reaches back within the limits. Each line links to its "
        "evidence in the tables below.",
        cls="muted",
    )
    parts: list[Any] = [intro]
    if first:
        parts.append(el("ol", [_item(f) for f in first], cls="findings"))
    else:
        parts.append(el("p", "Nothing was worse than its thresholds.", cls="findings-none"))
    if rest:
        parts.append(
            el(
                "details",
                el("summary", f"{len(rest)} within limits or without a threshold"),
                el("ol", [_item(f) for f in rest], cls="findings"),
                cls="findings-rest",
            )
        )
    return el("section", el("h2", "Findings"), *parts, id="findings")


def anchors(record: RunRecord) -> list[str]:
    """Each suite's section id, in the record's order."""
    from harness.reports.sections import suite_anchor

    return [suite_anchor(record, i) for i in range(len(record.suites))]


def metrics_folded(suite: SuiteRecord, anchor: str) -> Markup:
    """A suite's full metric table folded under one line (the findings above say what
    matters; a default run has ~200 rows). Links to a row open it (Chromium expands a closed
    <details> when a fragment points inside it)."""
    from harness.reports.sections import metrics_table

    n = len(suite.metrics)
    return el(
        "details",
        el("summary", f"All {n} metric{'s' if n != 1 else ''} of {suite.name}"),
        metrics_table(suite.metrics, anchor),
        cls="metrics-folded",
    )
