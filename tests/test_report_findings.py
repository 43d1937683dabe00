"""Issue 22, "findings first": one plain-words line per finding with value, CI, n and a
severity from declared thresholds; inconclusive when n is too small; linked to its evidence;
detail tables folded by suite. The severity rules are checked on hand-made metrics whose
answer is written out; the page in headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.records import Metric, RunRecord, load_record
from harness.report_config import FindingsConfig, Limits
from harness.reports import build_report, findings, write_report
from tests import browser
from tests.browser import PageProbe
from tests.test_report import make_run_dir

chromium_page = browser.chromium_page
LIMITS = Limits(minor=0.90, major=0.80)


def m(value: float | None, lo: float | None, hi: float | None, n: int | None,
      higher: bool | None = True) -> Metric:
    return Metric(name="accuracy", value=value, ci_low=lo, ci_high=hi, n=n, higher_is_better=higher)


@pytest.mark.parametrize(
    ("metric", "severity"),
    [
        (m(0.95, 0.93, 0.97, 500), "ok"),
        (m(0.85, 0.83, 0.87, 500), "minor"),
        (m(0.70, 0.66, 0.74, 500), "major"),
        (m(0.85, 0.70, 0.95, 500), "inconclusive"),  # past minor, CI reaches back within
        (m(0.95, 0.60, 1.00, 10), "inconclusive"),  # n below min_n, nothing shown
        (m(0.40, 0.20, 0.65, 10), "major"),  # n small, but the whole CI is past the major limit
        (m(0.90, 0.88, 0.92, 500), "ok"),  # on the limit is not worse than it
        (m(None, None, None, 0), "inconclusive"),  # n = 0: no value
        (m(0.95, None, None, None), "inconclusive"),  # n unknown
        (m(0.95, 0.9, 1.0, 500, higher=None), "info"),  # no direction: no judgement
    ],
)
def test_severity(metric: Metric, severity: str) -> None:
    assert findings.judge(metric, LIMITS, min_n=30)[0] == severity


def test_lower_is_better_and_missing_limits() -> None:
    limits = Limits(minor=0.02, major=0.10)
    assert findings.judge(m(0.083, 0.057, 0.12, 300, higher=False), limits, 30)[0] == "minor"
    assert findings.judge(m(0.2, 0.15, 0.25, 300, higher=False), limits, 30)[0] == "major"
    assert findings.judge(m(0.2, 0.15, 0.25, 300, higher=False), None, 30)[0] == "info"
    only_major = Limits(major=0.5)
    assert findings.judge(m(0.4, 0.3, 0.45, 300), only_major, 30)[0] == "major"
    why = findings.judge(m(0.01, 0.0, 0.03, 300, higher=False), limits, 30)[1]
    assert why.endswith("its 95% CI reaches past 0.02")


def record_with(run: Path, report: dict[str, Any] | None) -> RunRecord:
    record = load_record(run)
    config = dict(record.config)
    if report is not None:
        config["report"] = report
    return record.model_copy(update={"config": config})


def test_findings_of_a_run_link_to_rows_that_exist(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path)
    record = load_record(run)
    found = findings.collect(record, findings.anchors(record))
    document = build_report(run)
    assert found, "the fixture's headline metrics give findings"
    for f in found:
        assert f' id="{f.anchor}"' in document, f.anchor
        if f.metric is not None:
            assert f"n = {f.metric.n}" in f.text or f.metric.n is None
    # most severe first
    order = [findings.ORDER.index(f.severity) for f in found]
    assert order == sorted(order)
    # the section comes first: before the summary
    assert document.index('id="findings"') < document.index('id="summary"')


def test_run_file_overrides_thresholds(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path)
    base = record_with(run, None)
    anchors = findings.anchors(base)
    acc = next(f for f in findings.collect(base, anchors) if f.anchor.endswith("--accuracy"))
    strict = record_with(
        run, {"findings": {"min_n": 1, "thresholds": {"accuracy.accuracy": {"minor": 0.99}}}}
    )
    acc2 = next(f for f in findings.collect(strict, anchors) if f.anchor.endswith("--accuracy"))
    # fixture: 0.8523 [0.8123, 0.88x], n = 12: fewer than 30, but the whole CI is below 0.9
    assert acc.severity == "minor" and "even with only n = 12" in acc.text
    assert acc2.severity == "minor" and "minor limit 0.99" in acc2.text
    lenient = record_with(run, {"findings": {"thresholds": {"accuracy": {"minor": 0.5}}}})
    acc4 = next(f for f in findings.collect(lenient, anchors) if f.anchor.endswith("--accuracy"))
    assert acc4.severity == "inconclusive"  # within limits, but n = 12 < 30 shows nothing
    off = record_with(run, {"findings": {"thresholds": {"accuracy": None}}})
    acc3 = next(f for f in findings.collect(off, anchors) if f.anchor.endswith("--accuracy"))
    assert acc3.severity == "info"
    bad = record_with(run, {"findings": {"min_nn": 3}})
    with pytest.raises(ConfigError, match="min_nn"):
        findings.collect(bad, anchors)


def test_config_model_is_validated_by_the_run_file() -> None:
    from harness.config import parse_run_config

    raw = {"dataset": {"name": "rotten-tomatoes"}, "model": {"artifact": "minilm-l6"},
           "suites": [{"name": "accuracy"}], "report": {"findings": {"min_n": 0}}}
    with pytest.raises(ConfigError, match=r"report\.findings\.min_n"):
        parse_run_config(raw, source="run.yaml")
    raw["report"] = {"findings": {"min_n": 5, "thresholds": {"flip_rate": {"minor": 0.1}}}}
    config, _ = parse_run_config(raw, source="run.yaml")
    assert config.report is not None
    assert config.report.findings == FindingsConfig(min_n=5, thresholds={"flip_rate": Limits(minor=0.1)})


def test_failed_suite_is_a_major_finding(tmp_path: Path) -> None:
    record = load_record(make_run_dir(tmp_path))
    suite = record.suites[0].model_copy(update={"status": "error", "error": "boom", "metrics": []})
    record = record.model_copy(update={"suites": [suite, *record.suites[1:]]})
    first = findings.collect(record, findings.anchors(record))[0]
    assert first.severity == "major" and "did not finish (boom)" in first.text


@pytest.mark.browser
def test_findings_first_in_chromium(chromium_page: PageProbe, tmp_path: Path) -> None:
    report = write_report(make_run_dir(tmp_path))
    chromium_page.open(report)
    page = chromium_page.page
    sections = page.eval_on_selector_all("main > section", "els => els.map(e => e.id)")
    assert sections[0] == "findings"
    items = page.locator("#findings ol.findings > li.finding")
    assert items.count() >= 1 and items.first.is_visible()
    text = items.first.inner_text()
    assert re.search(r"n = \d+", text) and "evidence" in text
    # Detail tables are folded; following a finding's link opens its suite's table at the row.
    folded = page.locator("details.metrics-folded")
    assert folded.count() >= 1
    assert page.eval_on_selector_all("details.metrics-folded", "els => els.every(e => !e.open)")
    link = page.locator("#findings a.evidence-link").first
    target = link.get_attribute("href")
    assert target is not None and target.startswith("#")
    link.click()
    row = page.locator(f"[id='{target[1:]}']")
    assert row.is_visible()
    assert row.evaluate("e => e.closest('details').open") is True
    assert chromium_page.console_errors == [] and chromium_page.page_errors == []
    assert chromium_page.requests_except(report) == []
    # Printed (and so in the PDF), the folded tables are open.
    chromium_page.open(report)
    page.emulate_media(media="print")
    assert page.locator("details.metrics-folded table.metrics tr").last.is_visible()
