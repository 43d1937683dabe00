"""Build the static site from verified entries, and serve it on localhost for a look.

Output layout (all links relative; works from file:// and any static host)::

    index.html                 overview: one table per benchmark, mean win rate, charts
    models/<entry-id>.html     one page per entry
    suites/<suite>.html        one page per suite name (a section per benchmark definition)
    records/<entry-id>.json    each verified record, byte for byte
    data/leaderboard.json      the full table; data/leaderboard.csv the same in long form
    assets/site.css, site.js

The output is a pure function of the entries and settings: no clocks, sorted everywhere.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections import defaultdict
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from harness.errors import RecordError
from harness.leaderboard import pages
from harness.leaderboard.entries import Entry, SiteSettings, load_entries, load_settings, slugify
from harness.leaderboard.layout import CSP
from harness.leaderboard.ranking import Benchmark, Row, mean_win_rates, rank_all
from harness.records import canonical_json

RANKING = (
    "rank_best..rank_worst is a simultaneous (1 - alpha) rank interval: every pair of entries "
    "of a benchmark is tested (paired exact McNemar on shared examples for paired_metrics, "
    "otherwise a z-test from the two 95% intervals), Holm-adjusted across the benchmark's "
    "pairs; rank_best = 1 + entries significantly better, rank_worst = n - entries "
    "significantly worse (leaderboard/README.md)"
)
MARKER = ".harness-leaderboard-site"  # only folders carrying it (or empty ones) are ever wiped
ASSETS = ("site.css", "site.js")
MSG_NOT_A_SITE = (
    "{out}: exists and is not a harness leaderboard site (no {marker}); refusing to overwrite it"
)


@dataclass(frozen=True)
class BuildResult:
    out_dir: Path
    n_entries: int
    n_benchmarks: int
    n_files: int
    total_bytes: int


def default_paths(root: Path | None = None) -> tuple[Path, Path, Path]:
    """(entries dir, settings file, output dir) under ``root`` (default: the current folder)."""
    base = (root or Path.cwd()) / "leaderboard"
    return base / "entries", base / "site.yaml", base / "_site"


def _prepare(out: Path) -> None:
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file()):
            raise RecordError(MSG_NOT_A_SITE.format(out=out, marker=MARKER))
        shutil.rmtree(out)
    for sub in ("models", "suites", "records", "data", "assets"):
        (out / sub).mkdir(parents=True)
    (out / MARKER).write_text("built by harness leaderboard build\n", encoding="utf-8")


def table_rows(
    benchmarks: list[Benchmark], mwr: dict[str, tuple[float, int]]
) -> list[dict[str, Any]]:
    rows = []
    for bench in benchmarks:
        for row in bench.rows:
            rate = mwr.get(row.entry.entry_id)
            rows.append(
                {
                    "entry_id": row.entry.entry_id,
                    "model": row.entry.model_name,
                    "run_id": row.entry.record.run_id,
                    "suite": bench.key.suite,
                    "suite_version": bench.key.version,
                    "params": row.suite.params,
                    "params_sha256": bench.key.params_sha256,
                    "split_sha256": bench.key.split_sha256,
                    "ranked_by": bench.primary,
                    "rank_best": row.rank_best,
                    "rank_worst": row.rank_worst,
                    "rank_evidence": row.basis,
                    "mean_win_rate": rate[0] if rate else None,
                    "metrics": {
                        m.name: m.model_dump(mode="json", exclude={"name"})
                        for m in row.suite.metrics
                    },
                }
            )
    return rows


def _csv_cell(value: Any) -> Any:
    # Spreadsheet formula injection: text starting with = + - @ is neutralised; numbers stay numbers.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def table_csv(rows: list[dict[str, Any]]) -> str:
    fields = [
        "entry_id",
        "model",
        "run_id",
        "suite",
        "suite_version",
        "params_sha256",
        "split_sha256",
        "rank_best",
        "rank_worst",
        "mean_win_rate",
        "metric",
        "value",
        "ci_low",
        "ci_high",
        "ci_method",
        "n",
        "unit",
        "higher_is_better",
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        for name, m in row["metrics"].items():
            flat = {**row, "metric": name, **{k: m.get(k) for k in fields[11:]}}
            writer.writerow([_csv_cell(flat.get(f)) for f in fields])
    return buffer.getvalue()


def render(entries: list[Entry], settings: SiteSettings, out: Path) -> int:
    """Write every page and download; returns the number of benchmarks."""
    benchmarks = rank_all(entries, settings)
    mwr = mean_win_rates(benchmarks)
    files: dict[str, str] = {"index.html": pages.overview(benchmarks, entries, mwr, settings)}
    standings: dict[str, list[tuple[Benchmark, Row]]] = defaultdict(list)
    for bench in benchmarks:
        for row in bench.rows:
            standings[row.entry.entry_id].append((bench, row))
    for entry in entries:
        page = pages.model_page(entry, standings[entry.entry_id], mwr, settings)
        files[f"models/{entry.entry_id}.html"] = page
    by_suite: dict[str, list[Benchmark]] = defaultdict(list)
    for bench in benchmarks:
        by_suite[bench.key.suite].append(bench)
    for suite, benches in sorted(by_suite.items()):
        files[f"suites/{slugify(suite)}.html"] = pages.suite_page(
            suite, benches, benchmarks, mwr, settings
        )
    rows = table_rows(benchmarks, mwr)
    files["data/leaderboard.json"] = canonical_json(
        {"title": settings.title, "alpha": settings.alpha, "ranking": RANKING, "rows": rows}
    )
    files["data/leaderboard.csv"] = table_csv(rows)
    for name in ASSETS:
        files[f"assets/{name}"] = (
            resources.files("harness.leaderboard").joinpath(name).read_text(encoding="utf-8")
        )
    for rel, text in files.items():
        (out / rel).write_text(text, encoding="utf-8")
    for entry in entries:
        (out / "records" / f"{entry.entry_id}.json").write_bytes(entry.record_bytes)
    return len(benchmarks)


def build_site(entries_dir: Path, out: Path, *, settings_file: Path | None = None) -> BuildResult:
    """Verify every entry, then write the site; nothing is written when any entry fails."""
    settings = load_settings(settings_file)
    entries = load_entries(entries_dir, settings=settings)
    _prepare(out)
    n_benchmarks = render(entries, settings, out)
    n_files, total = site_weight(out)
    return BuildResult(out, len(entries), n_benchmarks, n_files, total)


def site_weight(out: Path) -> tuple[int, int]:
    """(number of files, total bytes) of a built site, the marker excluded."""
    files = [p for p in out.rglob("*") if p.is_file() and p.name != MARKER]
    return len(files), sum(p.stat().st_size for p in files)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def make_server(
    site: Path, *, port: int = 8000, host: str = "127.0.0.1", quiet: bool = False
) -> ThreadingHTTPServer:
    """An HTTP server for the built site, bound to localhost only; call ``serve_forever``."""
    if not (site / "index.html").is_file():
        raise RecordError(f"{site}: no index.html; run 'harness leaderboard build' first")
    handler = _QuietHandler if quiet else SimpleHTTPRequestHandler

    class Handler(handler):  # type: ignore[valid-type, misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(site), **kwargs)

        def end_headers(self) -> None:
            self.send_header("Content-Security-Policy", CSP + "; frame-ancestors 'none'")
            self.send_header("X-Content-Type-Options", "nosniff")
            super().end_headers()

    return ThreadingHTTPServer((host, port), Handler)
