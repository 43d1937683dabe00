"""PDF through headless Chromium's own print path (the report's print CSS applies).

Chromium is optional: without it ``--pdf`` fails with a message saying how to get it, after the
HTML report has been written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.errors import HarnessError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ENV = "HARNESS_CHROMIUM"
# Flags that keep a headless Chromium from reaching the network or the user's profile.
QUIET_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
MSG_NO_CHROMIUM = (
    "--pdf needs headless Chromium, which was not found (looked for {names} on PATH and ${env}); "
    "install it (e.g. 'apt-get install chromium') or print {html} from a browser"
)


def find_chromium() -> str | None:
    explicit = os.environ.get(CHROMIUM_ENV)
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def html_to_pdf(html_file: Path, pdf_file: Path, *, timeout_s: float = 120.0) -> Path:
    """Print ``html_file`` to ``pdf_file`` with headless Chromium."""
    binary = find_chromium()
    if binary is None:
        raise HarnessError(
            MSG_NO_CHROMIUM.format(
                names=", ".join(CHROMIUM_NAMES), env=CHROMIUM_ENV, html=html_file
            )
        )
    pdf_file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="harness-chromium-") as profile:
        command = [
            binary,
            *QUIET_FLAGS,
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf_file.resolve()}",
            html_file.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            raise HarnessError(
                f"Chromium did not finish printing {html_file} within {timeout_s:.0f} s"
            ) from None
    if done.returncode != 0 or not pdf_file.is_file() or pdf_file.stat().st_size == 0:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        raise HarnessError(
            f"Chromium could not print {html_file} to PDF (exit {done.returncode}): "
            + " | ".join(tail)
        )
    return pdf_file
