"""A suite from outside the package, installed as an entry-point plugin, needs no edit in harness/.

The suite below lives in a temporary distribution (``harnessplugin_demo`` with its
``.dist-info``: METADATA and an ``entry_points.txt`` in the ``harness.plugins`` group) put on
``PYTHONPATH`` of ``harness`` subprocesses. It registers itself, declares its capabilities
(shardable with its shard parameter, a headline metric, binary outcomes, the generic chart kinds
``metric_bars`` and ``outcome_counts``) and its per-example values (``details.per_example``).
The test shows it running (``harness run`` on the tiny fixture BERT), sharded (``harness sweep``
with ``shards: {plugin: 2}`` gives the unsharded rows), gated (``harness gate`` picks the
per-example paired test), rendered (``harness report`` shows its headline and charts) and on the
leaderboard (``harness leaderboard add/build`` writes a table for it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.store import read_jsonl
from tests.conftest import build_tiny_bert

pytestmark = pytest.mark.slow

PLUGIN = '''"""A demo suite: how often the model is right, and how often it is sure of itself."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from harness import registry
from harness.records import ChartSpec, SuiteCapabilities
from harness.suites.base import Suite, SuiteContext, SuiteOutcome, SuiteParams, proportion_metric


class DemoParams(SuiteParams):
    n_examples: int | None = Field(default=40, ge=1, description="Sample size; null: all.")
    threshold: float = Field(default=0.5, gt=0, lt=1, description="Top-class probability that counts as sure.")
    seed: int | None = Field(default=None, description="Sampling seed; null: the run seed.")


@registry.suites.register
class DemoSuite(Suite[DemoParams]):
    name = "plugin"
    version = "0.1"
    Params = DemoParams
    capabilities = SuiteCapabilities(
        shardable=True,
        shard_param="n_examples",
        headline="hit_rate",
        outcome_kinds=["binary"],
        charts=[
            ChartSpec(kind="metric_bars", title="Demo rates", metrics=["hit_rate", "sure_rate"]),
            ChartSpec(kind="outcome_counts", title="Demo outcomes by label", group="label_name", outcome="outcome"),
        ],
    )

    def run(self, model: Any, data: Any, ctx: SuiteContext) -> SuiteOutcome:
        p = self.params
        sample = data.sample(p.n_examples, ctx.seed if p.seed is None else p.seed)
        ids = [f"plugin:{i}" for i in sample.ids]
        todo = [k for k, row_id in enumerate(ids) if row_id not in ctx.examples.done]
        if todo:
            probs = model.predict_proba([sample.texts[k] for k in todo])
            rows = []
            for k, prob in zip(todo, probs, strict=True):
                label = int(sample.labels[k])
                right = int(np.argmax(prob)) == label
                rows.append({
                    "id": ids[k], "example_id": sample.ids[k], "label_name": model.label_names[label],
                    "p_true": float(prob[label]), "correct": right,
                    "sure": bool(float(np.max(prob)) >= p.threshold),
                    "outcome": "right" if right else "wrong",
                })
            ctx.examples.extend(rows)
        done = [ctx.examples.done[row_id] for row_id in ids]
        n = len(done)
        metrics = [
            proportion_metric("hit_rate", sum(r["correct"] for r in done), n, higher=True,
                              description="Share of the sample predicted right."),
            proportion_metric("sure_rate", sum(r["sure"] for r in done), n, higher=None,
                              description="Share whose top-class probability reaches the threshold."),
        ]
        details = {"per_example": {"hit_rate": {"field": "correct"}, "sure_rate": {"field": "sure"}}}
        return SuiteOutcome(metrics=metrics, details=details, example_order=ids)
'''


@pytest.fixture(scope="module")
def plugin_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary distribution folder: the package and its dist-info with the entry point."""
    root = tmp_path_factory.mktemp("plugin-dist")
    (root / "harnessplugin_demo").mkdir()
    (root / "harnessplugin_demo" / "__init__.py").write_text(PLUGIN, encoding="utf-8")
    info = root / "harnessplugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: harnessplugin-demo\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[harness.plugins]\ndemo = harnessplugin_demo\n", encoding="utf-8"
    )
    return root


def harness(*args: str, cwd: Path, plugin: Path | None) -> subprocess.CompletedProcess[str]:
    """``python -m harness ARGS`` in a fresh process, with the plugin on PYTHONPATH (or not)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if plugin is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(plugin), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
        )
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def run_file(folder: Path, model: Path, csv: Path, name: str) -> Path:
    raw = {
        "name": name,
        "seed": 0,
        "threads": 1,
        "dataset": {
            "path": str(csv),
            "columns": {"id": "id", "text": "text", "label": "label", "groups": ["group"]},
            "labels": ["neg", "pos"],
            "split_fractions": {"train": 0.5, "test": 0.5},
        },
        "model": {"path": str(model), "max_length": 32, "batch_size": 16},
        "suites": [{"name": "plugin", "params": {"n_examples": 40}}],
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


class Tables(HTMLParser):
    """Every table row's cell texts, to read the report's headline table."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def runs(
    plugin_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
    tiny_model_dir: Path,
    tiny_csv: Path,
) -> dict[str, Path]:
    """Two plain runs of the plugin suite (the fixture BERT and a second seed), via the CLI."""
    folder = tmp_path_factory.mktemp("plugin-runs")
    other = build_tiny_bert(folder / "m1", seed=1)
    out: dict[str, Path] = {"folder": folder, "m1": other}
    for key, model in (("a", tiny_model_dir), ("b", other)):
        spec = run_file(folder, model, tiny_csv, f"plugin-{key}")
        ok(harness("run", str(spec), "-o", str(folder / key), cwd=folder, plugin=plugin_root))
        out[key] = folder / key
    return out


def test_unknown_without_the_plugin_and_listed_with_it(plugin_root: Path, tmp_path: Path) -> None:
    without = harness("list", "suites", cwd=tmp_path, plugin=None)
    assert without.returncode == 0 and "plugin" not in without.stdout
    assert "plugin" in ok(harness("list", "suites", cwd=tmp_path, plugin=plugin_root))


def test_runs_with_its_capabilities_and_declarations(runs: dict[str, Path]) -> None:
    record = json.loads((runs["a"] / "record.json").read_text())
    (suite,) = record["suites"]
    assert record["status"] == "complete" and suite["name"] == "plugin" and suite["status"] == "ok"
    caps = suite["capabilities"]
    assert caps["shardable"] and caps["shard_param"] == "n_examples"
    assert caps["headline"] == "hit_rate" and caps["outcome_kinds"] == ["binary"]
    assert [c["kind"] for c in caps["charts"]] == ["metric_bars", "outcome_counts"]
    assert set(suite["details"]["per_example"]) == {"hit_rate", "sure_rate"}
    rows = list(read_jsonl(runs["a"] / suite["examples_file"]))
    assert len(rows) == suite["n_examples"] == 40
    hit = next(m for m in suite["metrics"] if m["name"] == "hit_rate")
    assert hit["value"] == pytest.approx(sum(r["correct"] for r in rows) / 40)


def test_sharded_sweep_gives_the_unsharded_rows(
    plugin_root: Path, runs: dict[str, Path], tiny_model_dir: Path, tiny_csv: Path, tmp_path: Path
) -> None:
    run_file(tmp_path, tiny_model_dir, tiny_csv, "base")
    matrix = {"models": [{"model.path": str(tiny_model_dir)}]}
    results = {}
    for name, extra in (("plain", {}), ("sharded", {"shards": {"plugin": 2}})):
        sweep = tmp_path / f"{name}.yaml"
        sweep.write_text(
            yaml.safe_dump({"name": name, "base": "base.yaml", "matrix": matrix, **extra}),
            encoding="utf-8",
        )
        ok(
            harness(
                "sweep",
                str(sweep),
                "-o",
                str(tmp_path / name),
                "-w",
                "2",
                cwd=tmp_path,
                plugin=plugin_root,
            )
        )
        (record,) = [p for p in (tmp_path / name).rglob("record.json") if ".shards" not in p.parts]
        results[name] = record.parent
    shard_logs = list((tmp_path / "sharded").rglob("plugin.*-of-2.jsonl"))
    assert len(shard_logs) == 2, "the sharded sweep did not shard the plugin suite"
    parts = [{r["example_id"] for r in read_jsonl(log)} for log in shard_logs]
    assert all(parts) and not parts[0] & parts[1] and len(parts[0] | parts[1]) == 40
    plain = list(read_jsonl(results["plain"] / "examples" / "plugin.jsonl"))
    sharded = list(read_jsonl(results["sharded"] / "examples" / "plugin.jsonl"))
    assert [{k: v for k, v in r.items() if k != "p_true"} for r in plain] == [
        {k: v for k, v in r.items() if k != "p_true"} for r in sharded
    ]
    # Floats of a shard's batches may differ in the last bits (see tests/test_sweep.py).
    assert [r["p_true"] for r in plain] == pytest.approx([r["p_true"] for r in sharded], rel=1e-5)
    metrics = [
        json.loads((results[k] / "record.json").read_text())["suites"][0]["metrics"]
        for k in results
    ]
    assert metrics[0] == metrics[1]


def test_gate_uses_the_declared_per_example_outcomes(
    plugin_root: Path, runs: dict[str, Path], tmp_path: Path
) -> None:
    policy = tmp_path / "gate.yaml"
    policy.write_text("rules:\n  - plugin.hit_rate: -5pt significant\n", encoding="utf-8")
    verdict = tmp_path / "verdict.json"
    result = harness(
        "gate",
        "--baseline",
        str(runs["a"]),
        "--candidate",
        str(runs["b"]),
        "--policy",
        str(policy),
        "--json",
        str(verdict),
        cwd=tmp_path,
        plugin=plugin_root,
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr
    (rule,) = json.loads(verdict.read_text())["rules"]
    assert rule["metric"] == "plugin.hit_rate"
    assert rule["test"]["method"] == "exact McNemar" and rule["test"]["kind"] == "binary"
    assert rule["test"]["n"] == 40  # paired over the 40 shared example ids


def test_report_shows_its_headline_and_generic_charts(
    plugin_root: Path, runs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    ok(harness("report", str(runs["a"]), "-o", str(out), cwd=tmp_path, plugin=plugin_root))
    html = out.read_text(encoding="utf-8")
    tables = Tables()
    tables.feed(html)
    summary = next(row for row in tables.rows if row and row[0] == "plugin")
    assert summary[1:3] == ["ok", "hit_rate"], summary
    assert "Demo rates" in html  # metric_bars
    assert "Demo outcomes by label" in html  # outcome_counts
    assert "No chart of kind" not in html and "could not be drawn" not in html
    counts = [row for row in tables.rows if row and row[0] in ("neg", "pos")]
    assert counts, "no outcome_counts table (label_name x outcome) in the report"


def test_leaderboard_has_a_table_for_it(
    plugin_root: Path, runs: dict[str, Path], tmp_path: Path
) -> None:
    entries, site, settings = tmp_path / "entries", tmp_path / "site", tmp_path / "site.yaml"
    settings.write_text("title: plugin demo\n", encoding="utf-8")
    common = ["--entries", str(entries), "--settings", str(settings)]
    ok(
        harness(
            "leaderboard",
            "add",
            str(runs["a"]),
            str(runs["b"]),
            *common,
            cwd=tmp_path,
            plugin=plugin_root,
        )
    )
    ok(harness("leaderboard", "build", "-o", str(site), *common, cwd=tmp_path, plugin=plugin_root))
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "plugin: 2 models" in index
    page = site / "suites" / "plugin.html"
    assert page.is_file() and "hit_rate" in page.read_text(encoding="utf-8")
