"""A sweep's jobs know their sweep, and the two kinds of report link to each other.

One real tiny sweep (``harness sweep`` in a subprocess: head-only fine-tunes of the tiny BERT on
2 and 4 shots per class, seed 0, two steps each, in parallel) is shared by the module. Its records
must carry ``sweep`` (validated against the committed JSON schema); its run reports must say
"Part of sweep …" and link to the sweep report once that is built (and say how to build it
before); the sweep report's job table must link each job to its run report where one exists.
Every link is followed to a file on disk, and in Chromium by clicking it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import pytest
import yaml

from harness.records import load_record, record_json_schema, schema_path
from harness.reports.audit import default_output
from harness.reports.sweep_link import (
    MSG_NO_FOLDER,
    MSG_NOT_BUILT,
    MSG_PART_OF,
    sweep_report_path,
)
from harness.reports.sweep_report import NO_RUN_REPORT
from tests import browser
from tests.browser import PageProbe

chromium_page = browser.chromium_page

SHOTS, SEEDS = (2, 4), (0,)


def harness(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def sweep_dir(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, tiny_csv: Path
) -> Path:
    """The finished real sweep's folder (``<tmp>/out/curve``)."""
    root = tmp_path_factory.mktemp("sweep-links")
    base = {
        "name": "tiny", "seed": 0,
        "dataset": {"path": str(tiny_csv), "columns": {"id": "id", "text": "text", "label": "label"},
                    "labels": ["neg", "pos"], "split_fractions": {"train": 0.5, "test": 0.5}},
        "model": {"max_length": 32, "batch_size": 16},
        "finetune": {"base": {"path": str(tiny_model_dir)}, "method": "head", "max_steps": 2,
                     "batch_size": 4, "max_length": 32, "precision": "fp32", "dev_split": None},
        "suites": [{"name": "accuracy", "params": {"n_bootstrap": 50}}],
    }  # fmt: skip
    (root / "base.yaml").write_text(yaml.safe_dump(base))
    spec = {"name": "curve", "base": "base.yaml", "workers": 2,
            "matrix": {"shots": [{"grid": {"finetune.shots": list(SHOTS)}}],
                       "seeds": [{"grid": {"seed": list(SEEDS)}}]}}  # fmt: skip
    (root / "curve.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    env = {**os.environ, "HARNESS_CACHE": str(root / "cache")}
    harness("sweep", "curve.yaml", "--out", "out/curve", cwd=root, env=env)
    return root / "out" / "curve"


def jobs(sweep_dir: Path) -> list[dict[str, Any]]:
    return list(json.loads((sweep_dir / "sweep.json").read_text())["jobs"])


def hrefs(html: str, cls: str) -> list[str]:
    return re.findall(rf'<a class="{cls}" href="([^"]+)"', html) + re.findall(
        rf'<a href="([^"]+)" class="{cls}"', html
    )


def resolve(page: Path, href: str) -> Path:
    return (page.parent / unquote(href)).resolve()


def test_every_job_record_names_its_sweep_and_cell(sweep_dir: Path) -> None:
    listed = jobs(sweep_dir)
    assert len(listed) == len(SHOTS) * len(SEEDS) and {j["status"] for j in listed} == {"ok"}
    schema = record_json_schema()
    committed = json.loads(schema_path().read_text())
    assert committed == json.loads(json.dumps(schema))  # the committed schema is current
    summary = json.loads((sweep_dir / "sweep.json").read_text())
    cells = set()
    for k, job in enumerate(listed, start=1):
        run = sweep_dir / job["id"]
        raw = json.loads((run / "record.json").read_text())
        jsonschema.validate(raw, committed)
        m = load_record(run).sweep
        assert m is not None
        assert (m.name, m.spec_sha256, m.job_id, m.job) == (
            "curve",
            summary["spec_sha256"],
            job["id"],
            job["name"],
        )
        assert (m.index, m.n_jobs, m.labels) == (k, len(listed), job["labels"])
        assert m.method == "head" and m.seed == raw["config"]["seed"]
        assert m.shots == raw["config"]["finetune"]["shots"] == raw["model"]["training"]["shots"]
        assert (run / m.sweep_dir).resolve() == sweep_dir.resolve()
        cells.add((m.shots, m.seed))
    assert cells == {(k, s) for k in SHOTS for s in SEEDS}


def test_reports_link_both_ways_and_say_what_is_missing(sweep_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "curve"
    shutil.copytree(sweep_dir, folder)  # a copied sweep folder: its own run folders are used
    first, second = (folder / j["id"] for j in jobs(sweep_dir)[:2])
    m = load_record(first).sweep
    assert m is not None
    part_of = MSG_PART_OF.format(
        name="curve", index=1, n=2, method="head", shots=m.shots, seed=m.seed
    )
    # 1. run report before the sweep report: says so and how to build it, links nowhere
    report = Path(harness("report", str(first), cwd=tmp_path).split("report: ")[1].strip())
    assert report == default_output(first)
    html = report.read_text()
    assert part_of in html and not hrefs(html, "sweep-report")
    target = sweep_report_path(folder)
    assert MSG_NOT_BUILT.format(folder=folder.resolve(), path=target.resolve()) in html
    # 2. the sweep report: first job links to its run report, the second says how to build one
    sweep_page = Path(
        harness("report", str(folder), cwd=tmp_path).split("sweep report: ")[1].strip()
    )
    assert sweep_page.resolve() == target.resolve()
    page = sweep_page.read_text()
    links = hrefs(page, "run-report")
    assert [resolve(sweep_page, h) for h in links] == [report.resolve()]
    assert NO_RUN_REPORT.format(run=second) in page
    folders = re.findall(r'<tr class="run ok"><td>\d+</td><td><a href="([^"]+)"', page)
    assert [resolve(sweep_page, h) for h in folders] == [
        (folder / j["id"]).resolve() for j in jobs(sweep_dir)
    ]
    # 3. the run report rebuilt: the link resolves to the sweep report; also from elsewhere (-o)
    for out in (report, tmp_path / "elsewhere" / "run.html"):
        out.parent.mkdir(exist_ok=True)
        html = Path(
            harness("report", str(first), "-o", str(out), cwd=tmp_path).split("report: ")[1].strip()
        ).read_text()
        assert part_of + ": see the " in html and MSG_NOT_BUILT.split(":")[0] not in html
        assert [resolve(out, h) for h in hrefs(html, "sweep-report")] == [target.resolve()]


def test_a_run_folder_moved_out_of_its_sweep_says_so(sweep_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "entries" / jobs(sweep_dir)[1]["id"]
    shutil.copytree(sweep_dir / run.name, run)
    html = Path(harness("report", str(run), cwd=tmp_path).split("report: ")[1].strip()).read_text()
    assert "Part of sweep curve (job 2 of 2: method=head" in html
    assert MSG_NO_FOLDER.format(folder=run.parent.resolve()) in html
    assert not hrefs(html, "sweep-report")


def test_a_grown_sweep_gives_the_current_position(sweep_dir: Path, tmp_path: Path) -> None:
    """The sweep file lists more jobs now (the sweep was edited and run again): k of n follow it."""
    folder = tmp_path / "curve"
    shutil.copytree(sweep_dir, folder)
    summary = json.loads((folder / "sweep.json").read_text())
    summary["jobs"].insert(0, {"id": "new-job", "name": "new", "status": "pending"})
    (folder / "sweep.json").write_text(json.dumps(summary))
    run = folder / jobs(sweep_dir)[0]["id"]
    html = Path(harness("report", str(run), cwd=tmp_path).split("report: ")[1].strip()).read_text()
    assert "Part of sweep curve (job 2 of 3: method=head" in html


@pytest.mark.browser
def test_links_followed_in_chromium(
    sweep_dir: Path, tmp_path: Path, chromium_page: PageProbe
) -> None:
    folder = tmp_path / "curve"
    shutil.copytree(sweep_dir, folder)
    run = folder / jobs(sweep_dir)[1]["id"]
    harness("report", str(folder), cwd=tmp_path)
    run_page = Path(harness("report", str(run), cwd=tmp_path).split("report: ")[1].strip())
    harness("report", str(folder), cwd=tmp_path)  # now the job table finds the run report
    chromium_page.open(run_page)
    page = chromium_page.page
    banner = page.locator("p.sweep-link")
    assert banner.count() == 1 and "Part of sweep curve (job 2 of 2" in banner.inner_text()
    with page.expect_navigation():
        banner.locator("a.sweep-report").click()
    assert unquote(page.url) == sweep_report_path(folder).resolve().as_uri()
    assert page.locator("svg[aria-labelledby^='c-sweep-curve']").count() == 1
    back = page.locator("table.sweep-runs a.run-report")
    assert back.count() == 1
    with page.expect_navigation():
        back.click()
    assert unquote(page.url) == run_page.resolve().as_uri()
    assert not chromium_page.page_errors


def test_a_job_recorded_before_records_carried_sweep_is_found_by_its_folder(
    tmp_path: Path,
) -> None:
    """Hand-built sweep folder (records without ``sweep``, as finished jobs of an older sweep
    are reused unchanged): the run report finds its sweep through the folder's sweep file."""
    from harness.reports.audit import write_report
    from harness.reports.sweep_report import write_sweep_report
    from tests.test_sweep_report import make_sweep

    folder, _ = make_sweep(tmp_path, {("full", 8): [0.6, 0.7], ("lora", 16): [0.65, 0.7]})
    listed = jobs(folder)
    run = folder / listed[2]["id"]
    assert load_record(run).sweep is None
    sweep_page = write_sweep_report(folder)
    page = write_report(run)
    html = page.read_text()
    assert "Part of sweep sweep (job 3 of 4: method=lora, shots=16, seed=0): see the " in html
    assert [resolve(page, h) for h in hrefs(html, "sweep-report")] == [sweep_page.resolve()]
    table = write_sweep_report(folder).read_text()
    assert [resolve(sweep_page, h) for h in hrefs(table, "run-report")] == [page.resolve()]
    alone = tmp_path / "alone" / run.name  # the same record outside any sweep folder: no line
    shutil.copytree(run, alone)
    assert "Part of sweep" not in write_report(alone).read_text()


@pytest.mark.parametrize(
    ("target", "start", "expected"),
    [
        ("/r/out/curve.sweep-report.html", "/r/out/curve", "../curve.sweep-report.html"),
        ("/r/my sweeps/c#1.sweep-report.html", "/r/my sweeps/c#1", "../c%231.sweep-report.html"),
        ("/r/a b/x.html", "/r/elsewhere", "../a%20b/x.html"),
    ],
)
def test_links_are_relative_and_quoted(target: str, start: str, expected: str) -> None:
    from harness.reports.sweep_link import href

    assert href(Path(target), Path(start)) == expected
    assert (Path(start) / unquote(expected)).resolve() == Path(target)
