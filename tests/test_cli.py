"""CLI: exit codes and messages for bad input; light imports; schema freshness."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness.errors import ExitCode
from harness.records import canonical_json, record_json_schema, schema_path


def harness(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd, timeout=300, check=False)


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom harness.cli.app import app\n"
        "r = CliRunner().invoke(app, ['--help'])\nassert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('torch', 'transformers', 'textattack', 'captum', 'fairlearn') if m in sys.modules]\n"
        "print(heavy)\nassert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_committed_schema_is_fresh() -> None:
    assert schema_path().read_text(encoding="utf-8") == canonical_json(record_json_schema()), (
        "harness/schema/record.schema.json is stale: run `make golden` (or `harness schema -o ...`)"
    )


def test_missing_run_file(tmp_path: Path) -> None:
    proc = harness("run", str(tmp_path / "nope.yaml"))
    assert proc.returncode == ExitCode.USAGE
    assert "nope.yaml: run file not found" in proc.stderr


def test_bad_config_lists_every_problem(tmp_path: Path) -> None:
    run = tmp_path / "bad.yaml"
    run.write_text("seeed: 1\ndataset: {name: rotten-tomatoes}\nmodel: {artifact: minilm-l6, batch_size: 0}\nsuites: [{name: acuracy}]\n")
    proc = harness("run", str(run))
    assert proc.returncode == ExitCode.USAGE
    for text in ("3 problem(s)", "seeed: unknown key (did you mean 'seed'?)", "model.batch_size", "suites[0].name: unknown suite 'acuracy'"):
        assert text in proc.stderr


def test_bad_data_exit_code(tmp_path: Path, tiny_model_dir: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("id,text,label\n1,good,pos\n2,,neg\n")
    run = tmp_path / "run.yaml"
    run.write_text(f"dataset: {{path: {data}, columns: {{id: id}}, split_fractions: {{test: 1}}}}\nmodel: {{path: {tiny_model_dir}}}\nsuites: [{{name: accuracy}}]\n")
    proc = harness("run", str(run), "--out", str(tmp_path / "out"))
    assert proc.returncode == ExitCode.USAGE
    assert "d.csv: row 3: column 'text' is empty or whitespace-only" in proc.stderr


def test_pickle_weights_refused(tmp_path: Path, tiny_csv: Path) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (model / "pytorch_model.bin").write_bytes(b"not really a pickle")
    run = tmp_path / "run.yaml"
    run.write_text(f"dataset: {{path: {tiny_csv}, columns: {{id: id}}}}\nmodel: {{path: {model}}}\nsuites: [{{name: accuracy}}]\n")
    proc = harness("run", str(run), "--out", str(tmp_path / "out"))
    assert proc.returncode == ExitCode.MODEL
    assert "refusing pickle-based weights (pytorch_model.bin)" in proc.stderr


def test_remote_code_refused(tmp_path: Path, tiny_csv: Path, tiny_model_dir: Path) -> None:
    import shutil

    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "evil.EvilModel"}
    (model / "config.json").write_text(json.dumps(config))
    run = tmp_path / "run.yaml"
    run.write_text(f"dataset: {{path: {tiny_csv}, columns: {{id: id}}}}\nmodel: {{path: {model}}}\nsuites: [{{name: accuracy}}]\n")
    proc = harness("run", str(run), "--out", str(tmp_path / "out"))
    assert proc.returncode == ExitCode.MODEL
    assert "asks for custom code (auto_map)" in proc.stderr


def test_show_and_list(tiny_run_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert harness("run", str(tiny_run_file), "--out", str(out)).returncode == 0
    shown = harness("show", str(out))
    assert shown.returncode == 0 and "accuracy" in shown.stdout
    as_json = json.loads(harness("show", str(out), "--json").stdout)
    assert as_json["status"] == "complete"
    listed = harness("list")
    assert listed.returncode == 0 and "rotten-tomatoes" in listed.stdout and "accuracy" in listed.stdout


def test_show_refuses_unknown_schema_version(tmp_path: Path) -> None:
    (tmp_path / "record.json").write_text(json.dumps({"schema_version": "99"}))
    proc = harness("show", str(tmp_path))
    assert proc.returncode == ExitCode.USAGE and "unsupported schema_version '99'" in proc.stderr
