"""``harness report SWEEP_FOLDER``: one self-contained HTML page for a learning-curve sweep.

The chart is the render stack's learning-curve chart (the leaderboard's), fed seed-level points;
the tables come from :mod:`harness.reports.sweep_data`. Written beside the sweep folder, never
inside it (a live sweep may still be writing there), at ``sweep_link.sweep_report_path``: the
run reports of its jobs link back there. The job table links each job to its run report where
``harness report RUN_FOLDER`` has written it, by paths relative to this page.
"""

from __future__ import annotations

from pathlib import Path

from harness import __version__
from harness.render.curves import CurvePoint, learning_curves, shot_label
from harness.render.html import Markup, el, join, raw
from harness.render.numbers import fmt, fmt_ci
from harness.reports.audit import CSP, default_output, stylesheet
from harness.reports.sweep_data import Cell, Comparison, RunPoint, Sweep, load_sweep
from harness.reports.sweep_link import SWEEP_REPORT_SUFFIX, href, sweep_report_path
from harness.store import atomic_write_text

CHART_ID = "c-sweep-curve"
SUFFIX = SWEEP_REPORT_SUFFIX
NO_RUN_REPORT = "no run report yet: harness report {run}"
TITLE = (
    "Accuracy vs training examples per class: mean over seeds (filled), each seed (hollow), "
    "95% Student-t interval over seeds"
)


def series(sweep: Sweep) -> dict[str, list[CurvePoint]]:
    """One chart series per method; a one-seed cell has no interval."""
    out: dict[str, list[CurvePoint]] = {}
    for c in sweep.cells:
        point = CurvePoint(c.shots, c.mean, c.low, c.high, c.n, tuple(c.seeds.values()))
        out.setdefault(c.method, []).append(point)
    return out


def _cell_row(c: Cell) -> Markup:
    std = "—" if c.std is None else fmt(c.std)
    seeds = ", ".join(
        f"{s}: {fmt(v)}" for s, v in sorted(c.seeds.items(), key=lambda kv: str(kv[0]))
    )
    return el("tr", el("td", c.method), el("td", shot_label(c.shots)), el("td", fmt(c.mean)),
              el("td", std), el("td", fmt_ci(c.low, c.high)), el("td", str(c.n)), el("td", seeds),
              cls="cell")  # fmt: skip


def _cmp_row(c: Comparison) -> Markup:
    def p(v: float | None) -> str:
        return "—" if v is None else fmt(v)

    return el("tr", el("td", shot_label(c.shots)), el("td", f"{c.a} − {c.b}"), el("td", str(c.n)),
              el("td", p(c.mean_diff)), el("td", p(c.t_p)), el("td", p(c.sign_flip_p)),
              el("td", c.verdict), cls="cmp")  # fmt: skip


def _table(cls: str, heads: list[str], rows: list[Markup]) -> Markup:
    return el("table", el("thead", el("tr", [el("th", h) for h in heads])), el("tbody", rows),
              cls=cls)  # fmt: skip


def _run_row(k: int, r: RunPoint, page_dir: Path) -> Markup:
    """One job: its cell, outcome and links (run report when built, run folder) from the page."""
    run = Path(r.run_dir)
    report = default_output(run)
    link: Markup | str
    if report.is_file():
        link = el("a", "run report", href=href(report, page_dir), cls="run-report")
    else:
        link = el("span", NO_RUN_REPORT.format(run=run), cls="muted")
    folder = el("a", r.name, href=href(run, page_dir)) if run.is_dir() else r.name
    known = r.status in ("ok", "reused") and r.method != "?"
    return el("tr", el("td", str(k)), el("td", folder),
              el("td", r.method if known else "—"), el("td", shot_label(r.shots) if known else "—"),
              el("td", "—" if r.seed is None else str(r.seed)), el("td", r.status),
              el("td", "—" if r.accuracy is None else fmt(r.accuracy)),
              el("td", link, "" if r.error is None else f" — error: {r.error}"),
              cls=f"run {r.status}")  # fmt: skip


def render(sweep: Sweep, page_dir: Path | None = None) -> str:
    """The whole page; ``page_dir`` is the folder it is written in (links start there)."""
    page_dir = page_dir or sweep_report_path(sweep.path.parent).parent
    chart = learning_curves(CHART_ID, series(sweep), title=TITLE, y_label="accuracy")
    if not chart:
        chart = el("p", "No method was run at two or more shot settings: no curve to draw.")
    runs = [_run_row(k, r, page_dir) for k, r in enumerate(sweep.runs, start=1)]
    title = f"Sweep report — {sweep.path.parent.name}"
    body = el("main", el("header", el("h1", title), el("p", str(sweep.path)), cls="top"),
        el("section", el("h2", "Learning curve"), chart, id="curve"),
        el("section", el("h2", "Accuracy per method and shots (over seeds)"),
           _table("sweep-cells", ["method", "shots", "mean", "seed std", "95% CI", "n seeds",
                                  "per seed"], [_cell_row(c) for c in sweep.cells]), id="cells"),
        el("section", el("h2", "Paired comparisons at each K (paired by seed)"),
           el("p", "scipy.stats.ttest_rel and an exact sign-flip permutation test on the "
                   "seed-level accuracy differences; a difference is called only when both "
                   "give p < 0.05."),
           _table("sweep-cmp", ["shots", "difference", "n paired", "mean diff", "t-test p",
                                "sign-flip p", "verdict"],
                  [_cmp_row(c) for c in sweep.comparisons]), id="compare"),
        el("section", el("h2", "Jobs"),
           _table("sweep-runs", ["job", "name (run folder)", "method", "shots", "seed", "status",
                                 "accuracy", "run report"], runs), id="runs"),
        el("footer", f"Rendered by harness {__version__} from {sweep.path}."))  # fmt: skip
    head = el("head", el("meta", charset="utf-8"),
              el("meta", http_equiv="Content-Security-Policy", content=CSP),
              el("title", title), el("style", raw(stylesheet())))  # fmt: skip
    return "<!DOCTYPE html>\n" + join([el("html", head, el("body", body), lang="en")]) + "\n"


def is_sweep(folder: Path) -> bool:
    return folder.is_dir() and (folder / "sweep.json").is_file()


def write_sweep_report(folder: Path, out: Path | None = None) -> Path:
    """Render and write atomically; default ``<sweep folder>.sweep-report.html`` beside it
    (``sweep_link.sweep_report_path``, where its jobs' run reports look for it)."""
    target = out or sweep_report_path(folder)
    atomic_write_text(target, render(load_sweep(folder), target.parent))
    return target
