"""Screenshots of a built site (overview and one model page) with headless Chromium.

Playwright is a development dependency and is imported here only; the browser is the system's
Chromium (never downloaded). Used for the closing note and by hand:

    python -m harness.leaderboard.screenshot leaderboard/_site shots/
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.errors import HarnessError
from harness.reports.pdf import QUIET_FLAGS, find_chromium

CHROMIUM = find_chromium() or "/usr/bin/chromium"


def screenshot(
    site: Path, out: Path, *, executable: str = CHROMIUM, model: str | None = None
) -> list[Path]:
    """Full-page PNGs of index.html and a model page, at desktop and phone widths."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise HarnessError(
            "screenshots need the 'playwright' package (pip install playwright)"
        ) from None
    if not Path(executable).is_file():
        raise HarnessError(f"{executable}: Chromium not found (apt-get install chromium)")
    models = sorted((site / "models").glob("*.html"))
    page_for_model = site / "models" / f"{model}.html" if model else (models[0] if models else None)
    targets = [("overview", site / "index.html")]
    if page_for_model is not None:
        targets.append(("model", page_for_model))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=list(QUIET_FLAGS))
        try:
            for label, width in (("desktop", 1280), ("phone", 390)):
                page = browser.new_page(viewport={"width": width, "height": 900})
                for name, file in targets:
                    page.goto(file.resolve().as_uri())
                    shot = out / f"{name}-{label}.png"
                    page.screenshot(path=str(shot), full_page=True)
                    written.append(shot)
                page.close()
        finally:
            browser.close()
    return written


if __name__ == "__main__":
    for path in screenshot(Path(sys.argv[1]), Path(sys.argv[2])):
        print(path)
