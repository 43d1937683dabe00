"""Headless Chromium through Playwright, for browser tests of generated pages (report, leaderboard).

Uses Debian's ``/usr/bin/chromium`` (installed by ``.ci/run``); Playwright's own browser download
is never used. The ``chromium_page`` fixture yields a ``PageProbe``: the page plus every console
error, page error and network request seen, so a test can assert "no errors, no requests".

Use it from a test module with ``from tests.browser import chromium_page  # noqa: F401``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium"))
# No network, no background services, no profile sync: a page can only load what it embeds.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class PageProbe:
    """A Playwright page and what it did while a test drove it."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # url -> reason, e.g. 'csp' when refused

    def open(self, path: Path) -> Any:
        """Load a local file and wait until it and anything it asks for have loaded."""
        return self.page.goto(path.resolve().as_uri(), wait_until="networkidle")

    def requests_except(self, path: Path) -> list[str]:
        """Requests other than the file itself (what 'no network requests' is about)."""
        own = path.resolve().as_uri()
        return [url for url in self.requests if url != own]

    def screenshot(self, png: Path, *, full_page: bool = True) -> Path:
        png.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(png), full_page=full_page)
        return png


def chromium_missing_reason() -> str | None:
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} not found (install Debian's chromium: apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright python package is not installed"
    return None


@pytest.fixture()
def chromium_page() -> Iterator[PageProbe]:
    reason = chromium_missing_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={"width": 1200, "height": 900}, java_script_enabled=True
            )
            page = context.new_page()
            probe = PageProbe(page=page)
            page.on(
                "console",
                lambda msg: probe.console_errors.append(msg.text) if msg.type == "error" else None,
            )
            page.on("pageerror", lambda exc: probe.page_errors.append(str(exc)))
            page.on("request", lambda request: probe.requests.append(request.url))
            page.on(
                "requestfailed",
                lambda request: probe.failed.__setitem__(request.url, request.failure or ""),
            )
            yield probe
        finally:
            browser.close()


def screenshot_html(html_file: Path, png: Path, *, width: int = 1200) -> Path:
    """Full-page PNG of a local HTML file (for notes and reviews), outside pytest."""
    reason = chromium_missing_reason()
    if reason:
        raise RuntimeError(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(html_file.resolve().as_uri(), wait_until="networkidle")
            png.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(png), full_page=True)
        finally:
            browser.close()
    return png
