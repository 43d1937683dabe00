"""The report reads what a suite declares (``caps()``): its headline and its charts.

A suite the report has never heard of declares generic charts and is drawn; a built-in suite
that declares no charts gets none; every chart kind a registered suite declares is one the
report can draw.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.records import (
    LEGACY_CAPABILITIES,
    ChartSpec,
    Metric,
    SuiteCapabilities,
    SuiteRecord,
    dump_record,
    load_record,
)
from harness.reports import build_report, sections, suite_charts
from harness.store import example_line, write_manifest
from tests.test_report import make_run_dir, parse

PLUGIN_CAPS = SuiteCapabilities(
    headline="quality.score",
    charts=[
        ChartSpec(
            kind="metric_bars", title="Quality of answers", metrics=["quality.score", "recall"]
        ),
        ChartSpec(
            kind="outcome_counts", title="Verdicts per bucket", group="bucket", outcome="verdict"
        ),
        ChartSpec(kind="from-the-future"),
    ],
)


def _plugin_suite(capabilities: SuiteCapabilities) -> SuiteRecord:
    return SuiteRecord(
        name="plugin_quality",
        version="1",
        params={},
        status="ok",
        wall_time_s=0.1,
        metrics=[
            Metric(name="first", value=0.11, higher_is_better=True, ci_low=0.05, ci_high=0.2, n=9),
            Metric(
                name="quality.score",
                value=0.7321,
                higher_is_better=True,
                ci_low=0.6,
                ci_high=0.8,
                n=9,
            ),
            Metric(
                name="recall", value=0.4455, higher_is_better=True, ci_low=0.3, ci_high=0.6, n=9
            ),
        ],
        examples_file="examples/plugin_quality.jsonl",
        n_examples=4,
        details={"raw_table": [{"k": "v"}]},
        capabilities=capabilities,
    )


def _with_suites(
    tmp_path: Path, *extra: SuiteRecord, replace: dict[str, SuiteRecord] | None = None
) -> Path:
    run = make_run_dir(tmp_path)
    rows = [
        {"id": "a", "bucket": "short", "verdict": "good"},
        {"id": "b", "bucket": "short", "verdict": "bad"},
        {"id": "c", "bucket": "long", "verdict": "good"},
        {"id": "d", "bucket": "short", "verdict": "good"},
    ]
    (run / "examples" / "plugin_quality.jsonl").write_text(
        "".join(example_line(r) + "\n" for r in rows), encoding="utf-8"
    )
    record = load_record(run)
    suites = [(replace or {}).get(s.name, s) for s in record.suites] + list(extra)
    (run / "record.json").write_text(
        dump_record(record.model_copy(update={"suites": suites})), encoding="utf-8"
    )
    write_manifest(run)
    return run


def _article(doc: str, anchor: str) -> str:
    start = doc.index(f'id="{anchor}"')
    return doc[start : doc.index("</article>", start)]


def test_a_suite_the_report_never_heard_of_is_drawn_from_its_declared_charts(
    tmp_path: Path,
) -> None:
    doc = build_report(_with_suites(tmp_path, _plugin_suite(PLUGIN_CAPS)))
    article = _article(doc, "suite-plugin_quality")
    # metric_bars: the named metrics, in the declared order, with their intervals as whiskers
    assert "<title>Quality of answers</title>" in article
    bars = article[article.index("<svg") : article.index("</svg>")]
    assert bars.index(">quality.score<") < bars.index(">recall<") and ">first<" not in bars
    assert ">0.7321<" in bars and ">0.4455<" in bars
    # outcome_counts: counts of the rows' verdict per bucket, from the examples file
    table = article[article.index("<caption>Verdicts per bucket</caption>") :]
    cells = [t.strip() for t in parse(table[: table.index("</table>")]).text if t.strip()]
    header, long_row, short_row = cells[1:4], cells[4:7], cells[7:]
    assert cells[0] == "Verdicts per bucket" and header == ["bucket", "bad", "good"]
    assert long_row == ["long", "0", "1"] and short_row == ["short", "1", "2"]
    # an unknown kind says so instead of failing; generic charts do not stand for the details
    assert "No chart of kind &#x27;from-the-future&#x27; is known to this report" in article
    assert "Details (as recorded)" in article


def test_the_summary_headline_is_the_declared_one(tmp_path: Path) -> None:
    doc = build_report(_with_suites(tmp_path, _plugin_suite(PLUGIN_CAPS)))
    summary = doc[doc.index('id="summary"') : doc.index('id="model-card"')]
    row = summary[summary.index('href="#suite-plugin_quality"') :]
    row = row[: row.index("</tr>")]
    assert ">quality.score<" in row and ">0.7321<" in row and ">[0.6, 0.8]<" in row
    undeclared = _plugin_suite(SuiteCapabilities())  # no headline: first metric with an interval
    assert sections.headline(undeclared).name == "first"  # type: ignore[union-attr]


def test_a_built_in_suite_that_declares_no_charts_gets_none(tmp_path: Path) -> None:
    plain = load_record(make_run_dir(tmp_path / "a")).suite("accuracy")
    assert plain is not None
    quiet = plain.model_copy(update={"capabilities": SuiteCapabilities(headline="ece")})
    doc = build_report(_with_suites(tmp_path / "b", replace={"accuracy": quiet}))
    article = _article(doc, "suite-accuracy")
    assert "Reliability diagram" not in article and "<svg" not in article
    assert "Details (as recorded)" in article  # nothing draws its details now, so they are listed
    summary = doc[doc.index('id="summary"') : doc.index('id="model-card"')]
    assert ">ece<" in summary


def test_repeated_suites_use_their_base_names_capabilities(tmp_path: Path) -> None:
    """Records before 1.2 carry no capabilities: 'robustness-1' reads robustness's."""
    plain = load_record(make_run_dir(tmp_path / "a")).suite("robustness")
    assert plain is not None and plain.capabilities is None
    doc = build_report(
        _with_suites(tmp_path / "b", plain.model_copy(update={"name": "robustness-1"}))
    )
    article = _article(doc, "suite-robustness-1")
    assert "Attack success rate by recipe" in article and "Details (as recorded)" not in article


def _declared_kinds() -> set[str]:
    from harness import registry

    kinds = set()
    for name in registry.suites.names():
        caps = getattr(registry.suites.get(name), "capabilities", SuiteCapabilities())
        kinds |= {spec.kind for spec in caps.charts}
    return kinds


@pytest.mark.parametrize("source", ["registered suites", "legacy records"])
def test_every_declared_chart_kind_has_a_renderer(source: str) -> None:
    if source == "registered suites":
        kinds = _declared_kinds()
    else:
        kinds = {spec.kind for caps in LEGACY_CAPABILITIES.values() for spec in caps.charts}
    assert kinds and kinds <= set(suite_charts.KINDS)
    assert {"metric_bars", "outcome_counts"} <= set(suite_charts.KINDS)


def test_no_list_of_suite_names_is_left_in_the_report() -> None:
    assert not hasattr(sections, "HEADLINES") and not hasattr(suite_charts, "RENDERERS")
