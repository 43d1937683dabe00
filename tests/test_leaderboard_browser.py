"""The built leaderboard in headless Chromium: sorting, filtering, clean loads, rank ranges, escaping."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from harness.leaderboard.entries import add_entry
from harness.leaderboard.site import build_site, make_server
from harness.leaderboard.synthetic import Spec, default_specs, write_run
from tests import browser
from tests.browser import PageProbe

pytestmark = pytest.mark.browser
chromium_page = browser.chromium_page  # the shared fixture, made visible to this module

PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("leaderboard")
    specs = [
        *default_specs(),
        Spec(PAYLOAD, 0.45, seed=9, model_card={"notes": PAYLOAD}, note=PAYLOAD),
        Spec("twin-a", 0.801, seed=41),  # close to the full fine-tune: a rank range
    ]
    for i, spec in enumerate(specs):
        add_entry(write_run(tmp / "runs" / f"r{i}", spec), tmp / "entries")
    out = tmp / "site"
    build_site(tmp / "entries", out)
    return out


def accuracy_table(page: Any) -> Any:
    return page.locator("table[id^='t-accuracy']")


def column(page: Any, index: int) -> list[str]:
    cells = accuracy_table(page).locator(f"tbody tr:not([hidden]) td:nth-child({index})")
    return [c.get_attribute("data-v") or c.inner_text() for c in cells.all()]


def local_only(probe: PageProbe, page_file: Path, site: Path) -> list[str]:
    """Requests that leave the site folder (any scheme but file://, or a file outside it)."""
    bad = []
    for url in probe.requests_except(page_file):
        parsed = urlparse(url)
        if parsed.scheme == "data":
            continue
        if parsed.scheme != "file" or not Path(unquote(parsed.path)).resolve().is_relative_to(
            site.resolve()
        ):
            bad.append(url)
    return bad


def test_sorting_by_mouse_and_keyboard(chromium_page: PageProbe, site: Path) -> None:
    page = chromium_page.page
    chromium_page.open(site / "index.html")
    header = accuracy_table(page).locator("thead th", has_text="accuracy").first
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "descending"  # higher is better: best first
    values = [float(v) for v in column(page, 3)]
    assert values == sorted(values, reverse=True)
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    values = [float(v) for v in column(page, 3)]
    assert values == sorted(values)
    model_button = accuracy_table(page).locator("thead th button", has_text="Model")
    model_button.focus()
    page.keyboard.press("Enter")
    names = [n.lower() for n in column(page, 2)]
    assert names == sorted(names)
    assert "sorted ascending" in page.locator("[id^='t-accuracy'][id$='-count']").inner_text()


def test_filtering_hides_other_models(chromium_page: PageProbe, site: Path) -> None:
    page = chromium_page.page
    chromium_page.open(site / "index.html")
    box = page.locator("input[data-filter^='t-accuracy']")
    assert box.is_visible()
    box.fill("LoRA")
    assert column(page, 2) == ["minilm-l6 (LoRA r=8)"]
    assert page.locator("[id^='t-accuracy'][id$='-count']").inner_text() == "1 of 5 rows shown"
    box.fill("")
    assert len(column(page, 2)) == 5


def test_rank_ranges_render(chromium_page: PageProbe, site: Path) -> None:
    """Rows the tests cannot order show a rank range ("1–2"), highlighted; others one rank."""
    page = chromium_page.page
    chromium_page.open(site / "index.html")
    ranged = accuracy_table(page).locator("tbody tr.ranged")
    assert ranged.count() >= 2  # twin-a and the full fine-tune cannot be told apart
    ranges = [t.locator("td").first.inner_text() for t in ranged.all()]
    assert all(re.fullmatch(r"\d+–\d+", r) for r in ranges), ranges
    single = accuracy_table(page).locator("tbody tr:not(.ranged)")
    assert single.count() >= 1
    assert all(re.fullmatch(r"\d+", t.locator("td").first.inner_text()) for t in single.all())
    colour = ranged.first.locator("td").first.evaluate("e => getComputedStyle(e).backgroundColor")
    plain = single.first.locator("td").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour != plain
    # Sorting by rank orders by best rank, then worst rank.
    accuracy_table(page).locator("thead th button", has_text="Rank").click()
    keys = [float(v) for v in column(page, 1)]
    assert keys == sorted(keys)


def test_every_page_linked_from_the_overview_loads_clean(
    chromium_page: PageProbe, site: Path
) -> None:
    page = chromium_page.page
    index = site / "index.html"
    chromium_page.open(index)
    hrefs = sorted(
        set(page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"))
    )
    targets = [site / h.split("#")[0] for h in hrefs if not h.startswith("#")]
    assert any(t.parent.name == "models" for t in targets) and any(
        t.parent.name == "suites" for t in targets
    )
    for target in [index, *sorted(set(targets))]:
        assert target.is_file(), target
        if target.suffix != ".html":
            continue  # downloads: JSON and CSV exist
        chromium_page.requests.clear()
        chromium_page.open(target)
        assert chromium_page.console_errors == [], target
        assert chromium_page.page_errors == [], target
        assert local_only(chromium_page, target, site) == [], target
        assert chromium_page.failed == {}, target
        for href in page.eval_on_selector_all(
            "a[href]", "els => els.map(e => e.getAttribute('href'))"
        ):
            if not href.startswith("#"):
                assert (target.parent / href.split("#")[0]).resolve().is_file(), (target, href)


def test_payload_in_names_and_texts_renders_as_text(chromium_page: PageProbe, site: Path) -> None:
    page = chromium_page.page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    chromium_page.open(site / "index.html")
    link = page.locator("a", has_text="window.__pwned=1").first
    assert link.inner_text() == PAYLOAD
    model_page = site / link.get_attribute("href")  # type: ignore[operator]
    assert page.evaluate("typeof window.__pwned") == "undefined"
    chromium_page.open(model_page)
    assert page.locator("h1").inner_text() == PAYLOAD
    assert page.locator("pre", has_text="window.__pwned=2").count() >= 1  # the model card, as text
    assert page.locator("li", has_text=PAYLOAD).count() >= 1  # the warning, as text
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("img").count() == 0
    assert dialogs == []
    assert chromium_page.console_errors == [] and chromium_page.page_errors == []
    assert not any(url.endswith("/x") for url in chromium_page.requests)


def test_readable_on_a_phone_and_keyboard_first(chromium_page: PageProbe, site: Path) -> None:
    page = chromium_page.page
    page.set_viewport_size({"width": 390, "height": 800})
    model = sorted((site / "models").glob("minilm*.html"))[0]
    for target in (site / "index.html", model):
        chromium_page.open(target)
        # No sideways scrolling of the page itself: wide tables scroll inside their own region.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, target
    chromium_page.open(site / "index.html")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"


def test_served_over_http_stays_same_origin(chromium_page: PageProbe, site: Path) -> None:
    server = make_server(site, port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        chromium_page.page.goto(f"{origin}/index.html", wait_until="networkidle")
        suite = chromium_page.page.locator("a[href^='suites/']").first.get_attribute("href")
        chromium_page.page.goto(f"{origin}/{suite}", wait_until="networkidle")
        assert chromium_page.console_errors == [] and chromium_page.page_errors == []
        assert all(
            u.startswith(origin + "/") or u.startswith("data:") for u in chromium_page.requests
        )
        assert chromium_page.page.locator("th[aria-sort] button").count() > 0
    finally:
        server.shutdown()
        server.server_close()
