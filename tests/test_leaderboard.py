"""Leaderboard: add/verify entries, refusals, grouping, significance-aware ranks, site output."""

from __future__ import annotations

import csv
import io
import json
import threading
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.errors import RecordError
from harness.leaderboard import charts
from harness.leaderboard.entries import (
    BenchmarkDefinition,
    SiteSettings,
    add_entry,
    load_entries,
)
from harness.leaderboard.ranking import group_benchmarks, mean_win_rates, pareto_front, rank_all
from harness.leaderboard.site import MARKER, build_site, make_server
from harness.leaderboard.synthetic import SPLIT_SHA, Spec, default_specs, write_run
from harness.records import MANIFEST_FILE, PREDICTIONS_FILE, RECORD_FILE
from harness.stats import mcnemar_exact
from harness.store import read_jsonl, write_manifest

PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


def add_runs(tmp: Path, specs: list[Spec], **kwargs: object) -> Path:
    entries = tmp / "entries"
    for i, spec in enumerate(specs):
        add_entry(write_run(tmp / "runs" / f"r{i}", spec, **kwargs), entries)  # type: ignore[arg-type]
    return entries


def rewrite_record(entry: Path, edit: dict[str, object]) -> None:
    """Edit an entry's record and re-seal its manifest (a consistent but invalid entry)."""
    raw = json.loads((entry / RECORD_FILE).read_text())
    raw.update(edit)
    (entry / RECORD_FILE).write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")
    write_manifest(entry)


@pytest.fixture()
def entries(tmp_path: Path) -> Path:
    return add_runs(tmp_path, default_specs())


# ------------------------------------------------------------------ add and verify


def test_add_copies_verified_record_and_trimmed_predictions(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", default_specs()[0])
    target = add_entry(run, tmp_path / "entries")
    assert (target / RECORD_FILE).read_bytes() == (run / RECORD_FILE).read_bytes()
    rows = list(read_jsonl(target / PREDICTIONS_FILE))
    source_rows = list(read_jsonl(run / PREDICTIONS_FILE))
    assert [set(r) for r in rows] == [{"id", "label", "predicted"}] * len(source_rows)
    assert [r["id"] for r in rows] == [r["id"] for r in source_rows]
    manifest = json.loads((target / MANIFEST_FILE).read_text())
    assert sorted(f["path"] for f in manifest["files"]) == [
        PREDICTIONS_FILE,
        RECORD_FILE,
        "source.json",
    ]
    # Adding the same run again yields the same entry id, not a duplicate.
    assert add_entry(run, tmp_path / "entries") == target
    assert len(list((tmp_path / "entries").iterdir())) == 1


def test_add_refuses_a_tampered_run(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", default_specs()[0])
    text = (run / RECORD_FILE).read_text().replace('"run_id": "synthetic-1"', '"run_id": "forged"')
    (run / RECORD_FILE).write_text(text)
    with pytest.raises(RecordError, match=r"failed verification.*sha256 differs"):
        add_entry(run, tmp_path / "entries")
    assert not (tmp_path / "entries").exists()


def test_add_refuses_a_folder_without_manifest(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", default_specs()[0])
    (run / MANIFEST_FILE).unlink()
    with pytest.raises(RecordError, match=r"no manifest\.json; only verified run folders"):
        add_entry(run, tmp_path / "entries")


def test_prediction_rows_name_the_bad_line(tmp_path: Path) -> None:
    """What ``add`` keeps of predictions.jsonl is read through harness.store: a bad line is named
    by number, with the entry's message (a line break inside a text is not a new line)."""
    from harness.leaderboard.entries import _prediction_rows

    file = tmp_path / PREDICTIONS_FILE
    good = {"id": "a\u2028b", "label": 1, "probabilities": [0.2, 0.8]}
    file.write_text(
        json.dumps(good, ensure_ascii=False) + "\n\n" + '{"id": "c", "label": 0}\n',
        encoding="utf-8",
    )
    with pytest.raises(
        RecordError, match=r"^run: predictions.jsonl line 3: needs 'predicted' or 'probabilities'$"
    ):
        _prediction_rows(file, "run")
    file.write_text(json.dumps(good, ensure_ascii=False) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"^run: predictions.jsonl line 2: Expecting"):
        _prediction_rows(file, "run")
    file.write_text(json.dumps(good, ensure_ascii=False) + "\n", encoding="utf-8")
    assert _prediction_rows(file, "run") == [{"id": "a\u2028b", "label": 1, "predicted": 1}]


def test_add_refuses_an_unknown_schema_version(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", default_specs()[0], schema_version="9.9")
    with pytest.raises(
        RecordError, match=r"unsupported schema_version '9.9'|unknown schema_version '9.9'"
    ):
        add_entry(run, tmp_path / "entries")


def test_add_refuses_a_different_benchmark_definition(tmp_path: Path) -> None:
    settings = SiteSettings(
        benchmark=BenchmarkDefinition(dataset="rotten-tomatoes", split_sha256=SPLIT_SHA)
    )
    other = "f" * 64
    run = write_run(tmp_path / "run", default_specs()[0], split_sha=other)
    with pytest.raises(
        RecordError, match=f"different benchmark definition: split_sha256 is '{other}'"
    ):
        add_entry(run, tmp_path / "entries", settings=settings)


# ------------------------------------------------------------------ build refusals


def test_build_fails_on_a_tampered_entry_and_writes_nothing(entries: Path, tmp_path: Path) -> None:
    entry = sorted(entries.iterdir())[0]
    record = entry / RECORD_FILE
    record.write_text(record.read_text().replace('"value": 0.', '"value": 0.9', 1))
    out = tmp_path / "site"
    with pytest.raises(RecordError) as info:
        build_site(entries, out)
    assert str(entry) in info.value.message
    assert "record.json: sha256 differs from the manifest" in info.value.message
    assert not out.exists()


def test_build_fails_on_an_unknown_schema_version(entries: Path, tmp_path: Path) -> None:
    entry = sorted(entries.iterdir())[1]
    rewrite_record(entry, {"schema_version": "2.0"})
    with pytest.raises(RecordError, match=r"unknown schema_version '2.0'; this harness reads 1.0, 1.1"):
        build_site(entries, tmp_path / "site")


def test_build_validates_against_the_json_schema(entries: Path, tmp_path: Path) -> None:
    entry = sorted(entries.iterdir())[0]
    raw = json.loads((entry / RECORD_FILE).read_text())
    raw["suites"][0]["metrics"][0]["value"] = "0.81"  # a number stored as a string
    rewrite_record(entry, {"suites": raw["suites"]})
    with pytest.raises(
        RecordError, match=r"does not match the committed JSON Schema .*suites/0/metrics/0/value"
    ):
        build_site(entries, tmp_path / "site")


def test_build_refuses_entries_of_another_benchmark(entries: Path, tmp_path: Path) -> None:
    settings = tmp_path / "site.yaml"
    settings.write_text("benchmark:\n  dataset: sst2\n")
    with pytest.raises(RecordError, match="dataset is 'rotten-tomatoes', the site expects 'sst2'"):
        build_site(entries, tmp_path / "site", settings_file=settings)


def test_build_refuses_to_overwrite_a_foreign_folder(entries: Path, tmp_path: Path) -> None:
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(RecordError, match="not a harness leaderboard site"):
        build_site(entries, out)
    assert (out / "notes.txt").read_text() == "keep me"


# ------------------------------------------------------------------ grouping and ranking


def test_benchmarks_group_only_comparable_records(tmp_path: Path) -> None:
    specs = default_specs()
    entries = add_runs(tmp_path / "a", specs[:2])
    add_entry(write_run(tmp_path / "b" / "run", specs[2], split_sha="e" * 64), entries)
    loaded = load_entries(entries, settings=SiteSettings())
    groups = group_benchmarks(loaded)
    accuracy = [k for k in groups if k.suite == "accuracy"]
    assert len(accuracy) == 2  # two evaluation splits: two tables
    assert sorted(len(groups[k]) for k in accuracy) == [1, 2]
    assert {k.split_sha256 for k in accuracy} == {SPLIT_SHA, "e" * 64}


def _ranked(
    tmp_path: Path, specs: list[Spec]
) -> dict[str, list[tuple[str, int | None, int | None, str]]]:
    loaded = load_entries(add_runs(tmp_path, specs), settings=SiteSettings())
    return {
        b.key.suite: [(r.entry.model_name, r.rank_best, r.rank_worst, r.basis) for r in b.rows]
        for b in rank_all(loaded, SiteSettings())
    }


def test_ranks_are_intervals_the_paired_tests_leave_open(tmp_path: Path) -> None:
    specs = [
        Spec("a", 0.90, seed=11, n=300),
        Spec("b", 0.89, seed=12, n=300),
        Spec("c", 0.60, seed=13, n=300),
    ]
    ranks = _ranked(tmp_path, specs)["accuracy"]
    assert [(name, best, worst) for name, best, worst, _ in ranks] == [
        ("a", 1, 2),
        ("b", 1, 2),
        ("c", 3, 3),
    ]
    assert "McNemar" in ranks[1][3] and "300 shared examples" in ranks[1][3]


def test_mcnemar_evidence_matches_the_discordant_counts(tmp_path: Path) -> None:
    specs = [Spec("a", 0.90, seed=21, n=250), Spec("b", 0.80, seed=22, n=250)]
    loaded = load_entries(add_runs(tmp_path, specs), settings=SiteSettings())
    bench = next(b for b in rank_all(loaded, SiteSettings()) if b.key.suite == "accuracy")
    top, below = bench.rows
    assert top.value != below.value
    rows_a = list(read_jsonl(top.entry.path / PREDICTIONS_FILE))
    rows_b = list(read_jsonl(below.entry.path / PREDICTIONS_FILE))
    right_a = {r["id"] for r in rows_a if r["label"] == r["predicted"]}
    right_b = {r["id"] for r in rows_b if r["label"] == r["predicted"]}
    p = mcnemar_exact(len(right_a - right_b), len(right_b - right_a))
    assert f"p={p:.3g}" in below.basis
    assert below.uncertain == (p >= 0.05)  # one pair: Holm leaves p as it is


def test_ranks_fall_back_to_interval_tests_and_follow_direction(tmp_path: Path) -> None:
    specs = [
        Spec("slow", 0.8, p50_ms=20.0, seed=31),
        Spec("fast", 0.8, p50_ms=5.0, seed=32),
        Spec("fast-too", 0.8, p50_ms=5.1, seed=33),
    ]
    latency = _ranked(tmp_path, specs)["latency"]
    # Lower is better: the fast pair leads and cannot be told apart (intervals ±3%); slow is last.
    assert [(n, b, w) for n, b, w, _ in latency] == [
        ("fast", 1, 2),
        ("fast-too", 1, 2),
        ("slow", 3, 3),
    ]
    assert "vs fast: 95%-interval z-test" in latency[1][3] and "not separated" in latency[1][3]
    assert "vs fast-too: 95%-interval z-test" in latency[2][3] and ": separated" in latency[2][3]


def test_mean_win_rate_counts_unseparated_pairs_as_half(tmp_path: Path) -> None:
    specs = [
        Spec("a", 0.90, seed=11, n=300),
        Spec("b", 0.89, seed=12, n=300),
        Spec("c", 0.6, seed=13, n=300),
    ]
    loaded = load_entries(add_runs(tmp_path, specs), settings=SiteSettings())
    benchmarks = rank_all(loaded, SiteSettings())
    accuracy = next(b for b in benchmarks if b.key.suite == "accuracy")
    assert [r.win_rate for r in accuracy.rows] == [0.75, 0.75, 0.0]
    rates = mean_win_rates(benchmarks)
    for entry in loaded:
        per_bench = [
            r.win_rate for b in benchmarks for r in b.rows if r.entry.entry_id == entry.entry_id
        ]
        assert rates[entry.entry_id] == (sum(per_bench) / len(per_bench), len(per_bench))  # type: ignore[arg-type]


def test_pareto_front() -> None:
    # (accuracy higher better, latency lower better)
    points = [(0.9, 10.0), (0.8, 5.0), (0.85, 12.0), (0.7, 4.0), (0.7, 6.0), (0.9, 10.0)]
    assert pareto_front(points, x_higher=True, y_higher=False) == [0, 1, 3, 5]


# ------------------------------------------------------------------ site output


def test_build_writes_every_page_and_download(entries: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    result = build_site(entries, out)
    ids = sorted(p.name for p in entries.iterdir())
    assert result.n_entries == 3 and result.n_benchmarks == 4
    assert sorted(p.stem for p in (out / "models").glob("*.html")) == ids
    assert sorted(p.stem for p in (out / "suites").glob("*.html")) == [
        "accuracy",
        "bias",
        "latency",
        "robustness",
    ]
    for entry_id in ids:
        assert (out / "records" / f"{entry_id}.json").read_bytes() == (
            entries / entry_id / RECORD_FILE
        ).read_bytes()
    table = json.loads((out / "data" / "leaderboard.json").read_text())
    assert len(table["rows"]) == 3 * 4
    rows = list(csv.DictReader(io.StringIO((out / "data" / "leaderboard.csv").read_text())))
    accuracy_rows = [r for r in rows if r["suite"] == "accuracy" and r["metric"] == "accuracy"]
    assert len(accuracy_rows) == 3
    by_id = {r["entry_id"]: r for r in table["rows"] if r["suite"] == "accuracy"}
    for row in accuracy_rows:
        assert float(row["value"]) == by_id[row["entry_id"]]["metrics"]["accuracy"]["value"]
    index = (out / "index.html").read_text()
    assert index.count('<table class="sortable"') == 1 + 4  # summary + one per benchmark
    assert "<svg" in index and 'class="front"' in index  # charts, with a Pareto front
    assert result.n_files == sum(1 for p in out.rglob("*") if p.is_file() and p.name != MARKER)


def test_site_shows_rank_intervals_in_pages_and_downloads(tmp_path: Path) -> None:
    specs = [
        Spec("a", 0.90, seed=11, n=300),
        Spec("b", 0.89, seed=12, n=300),
        Spec("c", 0.60, seed=13, n=300),
    ]
    entries = add_runs(tmp_path, specs)
    out = tmp_path / "site"
    build_site(entries, out)
    index = (out / "index.html").read_text()
    table = index.split('id="t-accuracy', 1)[1].split("</table>", 1)[0]
    assert table.count('<tr class="ranged"') == 2  # a and b: rank 1–2
    assert '<td class="num rank" data-v="1.000002">1–2</td>' in table
    assert '<td class="num rank" data-v="3.000003">3</td>' in table
    assert "3 pairs tested, Holm-adjusted at family-wise alpha 0.05" in index
    assert "Ranks are 95% rank intervals" in index
    rows = json.loads((out / "data" / "leaderboard.json").read_text())
    assert "Holm" in rows["ranking"]
    accuracy = sorted(
        (r["model"], r["rank_best"], r["rank_worst"]) for r in rows["rows"] if r["suite"] == "accuracy"
    )
    assert accuracy == [("a", 1, 2), ("b", 1, 2), ("c", 3, 3)]
    header = (out / "data" / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert "rank_best" in header and "rank_worst" in header and "tied" not in header
    page_a = next((out / "models").glob("a-*.html")).read_text()
    assert "rank 1–2 of 3" in page_a


def test_pareto_front_on_the_site_needs_significant_dominance(tmp_path: Path) -> None:
    """b is a little worse than a on both accuracy and p50 latency, but neither difference
    survives its table's test: b stays on the front; c is significantly worse on both."""
    specs = [
        Spec("a", 0.80, p50_ms=9.5, seed=3),
        Spec("b", 0.79, p50_ms=9.7, seed=9),
        Spec("c", 0.55, p50_ms=20.0, seed=4),
    ]
    loaded = load_entries(add_runs(tmp_path, specs), settings=SiteSettings())
    benchmarks = rank_all(loaded, SiteSettings())
    accuracy = {r.entry.model_name: r for b in benchmarks if b.key.suite == "accuracy" for r in b.rows}
    assert accuracy["b"].value < accuracy["a"].value  # type: ignore[operator]  # worse on both axes
    assert accuracy["b"].uncertain and accuracy["a"].uncertain
    chart = charts.accuracy_vs_latency(benchmarks, SiteSettings())
    assert "Pareto front: a, b</desc>" in chart
    values = [(accuracy[n].value, {"a": 9.5, "b": 9.7, "c": 20.0}[n]) for n in "abc"]
    assert pareto_front(values, x_higher=True, y_higher=False) == [0]  # by value alone: a only


def test_build_is_deterministic(entries: Path, tmp_path: Path) -> None:
    def snapshot(folder: Path) -> dict[str, bytes]:
        return {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }

    build_site(entries, tmp_path / "one")
    build_site(entries, tmp_path / "two")
    assert snapshot(tmp_path / "one") == snapshot(tmp_path / "two")


def test_pages_escape_every_record_string_and_have_a_strict_csp(tmp_path: Path) -> None:
    spec = Spec(PAYLOAD, 0.8, seed=5, model_card={"notes": PAYLOAD}, note=PAYLOAD)
    entries = add_runs(tmp_path, [spec, default_specs()[0]])
    out = tmp_path / "site"
    build_site(entries, out)
    escaped = "&lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;img src=x onerror=&quot;window.__pwned=2&quot;&gt;"
    for page in out.rglob("*.html"):
        html = page.read_text()
        assert "__pwned=1</script>" not in html and "<img" not in html, page
        assert " style=" not in html and "<style" not in html, page  # nothing needs 'unsafe-inline'
        assert (
            html.count("<script") == 1 and 'src="' in html.split("<script", 1)[1].split(">", 1)[0]
        )
        assert "content=\"default-src 'none'; script-src 'self'; style-src 'self'" in html
        assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "https://" not in html
    model_page = next((out / "models").glob("script-window-pwned*.html")).read_text()
    assert escaped in model_page  # the name, the warning and the model card, as text
    assert model_page.count("window.__pwned=1") >= 3


def test_csv_download_neutralises_formulas(tmp_path: Path) -> None:
    entries = add_runs(tmp_path, [Spec("=HYPERLINK(1)", 0.8, seed=7)])
    build_site(entries, tmp_path / "site")
    rows = list(
        csv.DictReader(io.StringIO((tmp_path / "site" / "data" / "leaderboard.csv").read_text()))
    )
    assert {r["model"] for r in rows} == {"'=HYPERLINK(1)"}


def test_empty_entries_folder_builds_an_empty_site(tmp_path: Path) -> None:
    result = build_site(tmp_path / "none", tmp_path / "site")
    assert result.n_entries == 0 and (tmp_path / "site" / "index.html").is_file()


# ------------------------------------------------------------------ CLI and serve


def _app() -> object:
    import typer

    from harness.cli.leaderboard import register

    app = typer.Typer()
    app.command()(lambda: None)  # a second command keeps 'leaderboard' a sub-command
    register(app)
    return app


def test_cli_add_build_and_refusal(tmp_path: Path) -> None:
    runner = CliRunner()
    app = _app()
    runs = [write_run(tmp_path / "runs" / f"r{i}", s) for i, s in enumerate(default_specs())]
    entries, out = tmp_path / "entries", tmp_path / "site"
    settings = tmp_path / "missing.yaml"  # absent: defaults
    result = runner.invoke(
        app,
        [
            "leaderboard",
            "add",
            *map(str, runs),
            "--entries",
            str(entries),
            "--settings",
            str(settings),
        ],
    )  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    assert result.output.count("added ") == 3
    result = runner.invoke(
        app,
        [
            "leaderboard",
            "build",
            "-o",
            str(out),
            "--entries",
            str(entries),
            "--settings",
            str(settings),
        ],
    )  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    assert "3 entries, 4 benchmarks" in result.output and "KiB" in result.output
    rewrite_record(sorted(entries.iterdir())[0], {"schema_version": "0.1"})
    result = runner.invoke(
        app,
        [
            "leaderboard",
            "build",
            "-o",
            str(out),
            "--entries",
            str(entries),
            "--settings",
            str(settings),
        ],
    )  # type: ignore[arg-type]
    assert result.exit_code == 2
    assert "unknown schema_version '0.1'" in result.output


def test_serve_binds_localhost_and_sends_csp(entries: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    build_site(entries, out)
    server = make_server(out, port=0, quiet=True)
    assert server.server_address[0] == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{server.server_address[1]}/index.html"
        ) as response:
            body = response.read().decode()
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert "<h1>" in body
    finally:
        server.shutdown()
        server.server_close()


def test_committed_real_entries_verify_and_build(tmp_path: Path) -> None:
    """The published entries (full, LoRA and head-only fine-tunes of minilm-l6) still verify
    against their manifests, the committed schema and the site's benchmark definition."""
    from harness.leaderboard.site import build_site

    repo = Path(__file__).resolve().parents[1]
    result = build_site(repo / "leaderboard" / "entries", tmp_path / "site", settings_file=repo / "leaderboard" / "site.yaml")
    assert result.n_entries >= 3
    overview = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    for method in ("full", "lora", "head"):
        assert f"minilm-l6 ({method} fine-tune)" in overview
