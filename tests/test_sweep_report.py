"""``harness report SWEEP_FOLDER``: the learning-curve sweep report.

Sweep folders are built from real synthetic records (the leaderboard's ``make_record``) written
into run folders beside a ``sweep.json`` as ``harness sweep`` writes it; the numbers on the page
are checked against numpy / scipy computed here from those records, and the chart in Chromium.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from harness.leaderboard.synthetic import Spec, make_record
from harness.records import RECORD_FILE, dump_record
from harness.reports.sweep_data import NO_SHOTS, TOO_FEW, load_sweep
from harness.reports.sweep_report import CHART_ID, write_sweep_report
from tests import browser
from tests.browser import PageProbe

chromium_page = browser.chromium_page  # the shared fixture, made visible to this module

ACC = {"full": [0.55, 0.60, 0.70], "setfit": [0.62, 0.66, 0.71]}


def make_sweep(root: Path, cells: dict[tuple[str, int | None], list[float]],
               failed: int = 0) -> tuple[Path, dict[tuple[str, int | None, int], float]]:  # fmt: skip
    """A sweep folder: one run folder per (method, shots, seed); returns the recorded accuracies."""
    folder, jobs, measured = root / "sweep", [], {}
    for (method, shots), accs in cells.items():
        for seed, acc in enumerate(accs):
            name = f"s{seed}__k{shots}__{method}"
            record, _ = make_record(Spec(name, acc, seed=seed, n=120))
            ft: dict[str, Any] = {"method": method, **({"shots": shots} if shots else {})}
            record = record.model_copy(update={"config": {"seed": seed, "finetune": ft}})
            run = folder / f"{name}-0123456789"
            run.mkdir(parents=True)
            (run / RECORD_FILE).write_text(dump_record(record), encoding="utf-8")
            m = record.suites[0].metric("accuracy")
            assert m is not None and m.value is not None
            measured[(method, shots, seed)] = m.value
            jobs.append({"id": run.name, "name": name, "status": "ok", "run_dir": str(run),
                         "error": None})  # fmt: skip
    for i in range(failed):
        jobs.append({"id": f"bad{i}", "name": f"bad{i}", "status": "failed", "run_dir": None,
                     "error": "CUDA out of memory"})  # fmt: skip
    (folder / "sweep.json").write_text(json.dumps({"jobs": jobs, "finished": True}))
    return folder, measured


def test_numbers_match_scipy(tmp_path: Path) -> None:
    cells = {
        (m, k): [a + 0.02 * (k == 16) for a in accs] for m, accs in ACC.items() for k in (8, 16)
    }
    folder, got = make_sweep(tmp_path, cells)
    sweep = load_sweep(folder)
    for c in sweep.cells:
        vals = np.array([got[(c.method, c.shots, s)] for s in range(3)])
        assert c.mean == pytest.approx(vals.mean())
        assert c.std == pytest.approx(vals.std(ddof=1))
        lo, hi = stats.t.interval(0.95, 2, loc=vals.mean(), scale=stats.sem(vals))
        assert (c.low, c.high) == (pytest.approx(max(lo, 0)), pytest.approx(min(hi, 1)))
    for cmp in sweep.comparisons:
        x = [got[(cmp.a, cmp.shots, s)] for s in range(3)]
        y = [got[(cmp.b, cmp.shots, s)] for s in range(3)]
        assert cmp.t_p == pytest.approx(stats.ttest_rel(x, y).pvalue)
        assert cmp.sign_flip_p == pytest.approx(
            stats.permutation_test((np.array(x) - np.array(y),), np.mean,
                                   permutation_type="samples").pvalue)  # fmt: skip


def test_one_seed_missing_method_and_failed_job(tmp_path: Path) -> None:
    folder, _ = make_sweep(tmp_path, {("full", 8): [0.6], ("setfit", 8): [0.7],
                                      ("full", 16): [0.65]}, failed=1)  # fmt: skip
    sweep = load_sweep(folder)
    assert [c.verdict for c in sweep.comparisons] == [TOO_FEW.format(n=1, need=3)]
    html = write_sweep_report(folder).read_text()
    assert "too few seeds to tell" in html and "CUDA out of memory" in html


def test_no_shots_is_a_clear_error(tmp_path: Path) -> None:
    folder, _ = make_sweep(tmp_path, {("full", None): [0.6, 0.7]})
    proc = subprocess.run([sys.executable, "-m", "harness", "report", str(folder)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert NO_SHOTS.format(path=folder / "sweep.json") in proc.stderr + proc.stdout
    assert not folder.with_name("sweep.sweep-report.html").exists()


DODGE_ACC = {**ACC, "head": [0.50, 0.52, 0.58]}
TIP = re.compile(r"^(?P<method>[\w-]+), (?P<k>\w+) shots(?P<seed>, seed run \d+)?: ")


def check_dodge(marks: list[dict[str, Any]], ticks: dict[str, float]) -> None:
    """Marks (circles: title, cx, class; polylines: points) against the K tick positions: each
    method has its own offset at every K, the same for its mean, line and seed dots, and every
    dot stays inside its K's band (half the tick spacing either side, less the dot's radius)."""
    xs = sorted(ticks.values())
    half = (xs[1] - xs[0]) / 2
    means: dict[tuple[str, str], float] = {}
    seeds: dict[tuple[str, str], set[float]] = {}
    for mark in (m for m in marks if m["tag"] == "circle"):
        found = TIP.match(mark["title"])
        assert found, mark["title"]
        key = (found["method"], found["k"])
        assert abs(mark["cx"] - ticks[key[1]]) < half - mark["r"], (key, mark["cx"], ticks)
        if found["seed"]:
            seeds.setdefault(key, set()).add(round(mark["cx"], 1))
        else:
            means[key] = mark["cx"]
    methods = sorted({m for m, _ in means})
    assert len(methods) == 3
    offsets = {m: [round(means[(m, k)] - ticks[k], 1) for k in ticks] for m in methods}
    for m in methods:  # one offset per method at every K ...
        assert len(set(offsets[m])) == 1, offsets
    firsts = [offsets[m][0] for m in methods]
    assert firsts == sorted(firsts) and len(set(firsts)) == 3  # ... distinct, in legend order
    assert sum(firsts) == pytest.approx(0, abs=0.2)  # centred on the K
    for (m, k), xs_seed in seeds.items():  # seed dots: one x per (method, K), right of the mean
        assert len(xs_seed) == 1 and next(iter(xs_seed)) > means[(m, k)]
    for k in ticks:
        assert len({next(iter(seeds[(m, k)])) for m in methods}) == 3  # no two methods overlap
    lines = [m["points"] for m in marks if m["tag"] == "polyline"]
    for m, points in zip(methods, lines, strict=True):  # the line joins the dodged means
        assert [x for x, _ in points] == pytest.approx([means[(m, k)] for k in ticks], abs=0.06)


def test_methods_are_dodged_inside_their_k_band(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    folder, _ = make_sweep(tmp_path, {(m, k): a for m, a in DODGE_ACC.items() for k in (8, 16, 32)})
    html = write_sweep_report(folder).read_text()
    found = re.search(r"<svg[^>]*aria-labelledby=\"c-sweep-curve.*?</svg>", html, re.S)
    assert found
    svg = ET.fromstring(found.group(0))
    ns = "{http://www.w3.org/2000/svg}"
    ticks = {t.text or "": float(t.get("x", "0")) for t in svg.iter(f"{ns}text")
             if t.text in ("8", "16", "32") and t.get("text-anchor") == "middle"}  # fmt: skip
    assert len(ticks) == 3
    marks: list[dict[str, Any]] = []
    for c in svg.iter(f"{ns}circle"):
        title = c.find(f"{ns}title")
        marks.append({"tag": "circle", "title": "" if title is None else title.text,
                      "cx": float(c.get("cx", "nan")), "r": float(c.get("r", "0"))})  # fmt: skip
    for pl in svg.iter(f"{ns}polyline"):
        pts = [tuple(map(float, xy.split(","))) for xy in (pl.get("points") or "").split()]
        marks.append({"tag": "polyline", "points": pts})
    check_dodge(marks, ticks)
    whiskers = {round(float(ln.get("x1", "0")), 1) for ln in svg.iter(f"{ns}line")
                if ln.get("x1") == ln.get("x2") and ln.get("stroke") != "currentColor"}  # fmt: skip
    means = {
        round(m["cx"], 1) for m in marks if m["tag"] == "circle" and "seed run" not in m["title"]
    }
    assert means == whiskers  # every interval is drawn at its dodged mean


@pytest.mark.browser
def test_chart_in_chromium(tmp_path: Path, chromium_page: PageProbe) -> None:
    cells = {(m, k): accs for m, accs in ACC.items() for k in (8, 16, 32)}
    folder, _ = make_sweep(tmp_path, cells)
    out = write_sweep_report(folder)
    chromium_page.open(out)
    page = chromium_page.page
    svg = page.locator(f"svg[aria-labelledby^='{CHART_ID}']")
    assert svg.count() == 1
    assert svg.locator("polyline.curve").count() == 2
    assert svg.locator("circle.seed").count() == 2 * 3 * 3
    assert svg.locator("circle:not(.seed)").count() == 2 * 3
    assert page.locator("tr.cell").count() == 6 and page.locator("tr.cmp").count() == 3
    assert not chromium_page.page_errors and not chromium_page.requests_except(out)
    assert re.search("setfit", svg.inner_html())


JS_MARKS = """svg => {
  const c = el => { const b = el.getBoundingClientRect(); return b.x + b.width / 2; };
  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  const x0 = svg.getBoundingClientRect().x;
  const user = v => (v - x0) / scale;  // page px back to the chart's own units
  const ticks = {};
  for (const t of svg.querySelectorAll('text[text-anchor=middle]'))
    if (/^(8|16|32)$/.test(t.textContent)) ticks[t.textContent] = user(c(t));
  const marks = [...svg.querySelectorAll('circle')].map(el => ({tag: 'circle',
    title: el.querySelector('title').textContent, cx: user(c(el)),
    r: el.getBoundingClientRect().width / 2 / scale}));
  for (const pl of svg.querySelectorAll('polyline'))
    marks.push({tag: 'polyline', points: [...pl.points].map(p => [p.x, p.y])});
  return {ticks, marks};
}"""


@pytest.mark.browser
def test_dodge_as_chromium_draws_it(tmp_path: Path, chromium_page: PageProbe) -> None:
    """The same checks on the rendered geometry: bounding boxes, not attributes."""
    folder, _ = make_sweep(tmp_path, {(m, k): a for m, a in DODGE_ACC.items() for k in (8, 16, 32)})
    out = write_sweep_report(folder)
    chromium_page.open(out)
    got = chromium_page.page.locator(f"svg[aria-labelledby^='{CHART_ID}']").evaluate(JS_MARKS)
    assert len(got["ticks"]) == 3
    check_dodge(got["marks"], got["ticks"])
    assert not chromium_page.page_errors
