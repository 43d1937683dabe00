"""Screenshot of a run's report: ``python -m harness.reports.screenshot RUN_DIR OUT.png``.

Renders the report to a temporary file and photographs it with headless Chromium's
``--screenshot`` (no Playwright needed, so it works wherever ``--pdf`` does).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from harness.errors import HarnessError
from harness.reports.addenda import ReportOptions
from harness.reports.audit import build_report
from harness.reports.pdf import (
    CHROMIUM_ENV,
    CHROMIUM_NAMES,
    MSG_NO_CHROMIUM,
    QUIET_FLAGS,
    find_chromium,
)


def screenshot(
    run_dir: Path, png: Path, *, width: int = 1200, height: int = 2400, timeout_s: float = 120.0,
    options: ReportOptions | None = None,
) -> Path:
    binary = find_chromium()
    if binary is None:
        raise HarnessError(
            MSG_NO_CHROMIUM.format(
                names=", ".join(CHROMIUM_NAMES), env=CHROMIUM_ENV, html="the report"
            )
        )
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="harness-shot-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(build_report(run_dir, options), encoding="utf-8")
        command = [
            binary,
            *QUIET_FLAGS,
            f"--user-data-dir={tmp}/profile",
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            f"--screenshot={png.resolve()}",
            page.as_uri(),
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    if done.returncode != 0 or not png.is_file():
        raise HarnessError(
            f"Chromium could not take a screenshot of {run_dir}'s report (exit {done.returncode})"
        )
    return png


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(
            "usage: python -m harness.reports.screenshot RUN_DIR OUT.png [HEIGHT]", file=sys.stderr
        )
        return 2
    try:
        out = screenshot(
            Path(argv[0]), Path(argv[1]), height=int(argv[2]) if len(argv) == 3 else 2400
        )
    except HarnessError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return int(exc.exit_code)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
