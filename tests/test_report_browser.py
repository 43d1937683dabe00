"""The audit report in headless Chromium: renders, stays offline, hostile text stays text."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.reports import build_report, write_report
from harness.reports.audit import CSP
from harness.reports.pdf import html_to_pdf
from harness.reports.screenshot import screenshot
from tests import browser
from tests.browser import CHROMIUM, PageProbe
from tests.test_report import HOSTILE, make_run_dir

pytestmark = pytest.mark.browser
chromium_page = browser.chromium_page  # the shared fixture, made visible to this module


@pytest.fixture()
def hostile_report(tmp_path: Path) -> Path:
    return write_report(make_run_dir(tmp_path, hostile=HOSTILE))


def _assert_not_pwned(probe: PageProbe) -> None:
    page = probe.page
    assert page.evaluate("typeof window.__pwned") == "undefined"
    # The explorer's data block and its one script (allowed by hash) are the only scripts.
    assert page.locator("script:not([type='application/json'])").count() == 1
    assert page.locator("img").count() == 0
    assert (
        page.evaluate(
            "[...document.querySelectorAll('*')].some(e => [...e.attributes]"
            ".some(a => a.name.startsWith('on')))"
        )
        is False
    )


def test_report_renders_offline_without_errors(
    chromium_page: PageProbe, hostile_report: Path
) -> None:
    response = chromium_page.open(hostile_report)
    assert response is not None and response.ok
    page = chromium_page.page
    assert page.title().startswith("Audit report")
    for ident in ("summary", "model-card", "suites", "worst-cases", "limitations", "provenance"):
        assert page.locator(f"section#{ident}").is_visible(), ident
    # Charts render with a real size (an SVG error would collapse them).
    boxes = page.eval_on_selector_all(
        "svg.chart", "els => els.map(e => e.getBoundingClientRect().width)"
    )
    assert len(boxes) >= 8 and min(boxes) > 100
    assert chromium_page.console_errors == []
    assert chromium_page.page_errors == []
    assert chromium_page.requests_except(hostile_report) == []


def test_hostile_model_name_and_text_do_not_execute(
    chromium_page: PageProbe, hostile_report: Path
) -> None:
    chromium_page.open(hostile_report)
    _assert_not_pwned(chromium_page)
    page = chromium_page.page
    # The hostile strings are visible, verbatim, as text.
    assert HOSTILE in page.locator("header.top p").inner_text()
    assert HOSTILE in page.locator("#worst-cases").inner_text().replace("\n", " ")
    assert HOSTILE in page.title()


def test_escaping_holds_without_the_csp(
    chromium_page: PageProbe, hostile_report: Path, tmp_path: Path
) -> None:
    """Escaping is the defence, the CSP a second wall: without the CSP nothing runs either."""
    document = hostile_report.read_text(encoding="utf-8")
    meta = f'<meta http-equiv="Content-Security-Policy" content="{CSP.replace(chr(39), "&#x27;")}">'
    assert meta in document
    bare = tmp_path / "no-csp.html"
    bare.write_text(document.replace(meta, ""), encoding="utf-8")
    chromium_page.open(bare)
    _assert_not_pwned(chromium_page)
    assert chromium_page.requests_except(bare) == []
    assert chromium_page.page_errors == []


def test_csp_refuses_external_loads(
    chromium_page: PageProbe, hostile_report: Path, tmp_path: Path
) -> None:
    """Were anything external ever added, the policy refuses it before any request leaves."""
    document = hostile_report.read_text(encoding="utf-8")
    spiked = tmp_path / "spiked.html"
    spiked.write_text(
        document.replace(
            "</head>", '<link rel="stylesheet" href="http://127.0.0.1:9/x.css"></head>', 1
        ),
        encoding="utf-8",
    )
    chromium_page.open(spiked)
    # Playwright reports the attempt; Chromium refuses it ('csp') before anything is sent.
    assert chromium_page.requests_except(spiked) == ["http://127.0.0.1:9/x.css"]
    assert chromium_page.failed == {"http://127.0.0.1:9/x.css": "csp"}
    assert any("Content Security Policy" in e for e in chromium_page.console_errors)


def test_print_css_and_pdf(chromium_page: PageProbe, hostile_report: Path, tmp_path: Path) -> None:
    chromium_page.open(hostile_report)
    page = chromium_page.page
    assert page.locator("nav.toc").is_visible()
    page.emulate_media(media="print")
    assert not page.locator("nav.toc").is_visible()
    pdf = html_to_pdf(hostile_report, tmp_path / "report.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and data.count(b"/Type /Page") + data.count(b"/Type/Page") >= 3


def test_screenshot_module(tmp_path: Path) -> None:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found")
    run = make_run_dir(tmp_path)
    png = screenshot(run, tmp_path / "shot.png", height=1200)
    assert png.read_bytes().startswith(b"\x89PNG")
    assert build_report(run)  # the run folder is untouched by the screenshot
    assert sorted(p.name for p in run.parent.iterdir()) == ["run", "shot.png"]
