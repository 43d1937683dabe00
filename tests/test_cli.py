"""CLI: exit codes and messages for bad input; light imports; schema freshness."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_run_summary_names_precision_and_a_failed_agreement(tiny_run_file: Path, tmp_path: Path) -> None:
    """A reduced-precision run prints its precision and fp32 agreement at the end; an agreement
    below min_agreement is printed in full (not only logged to run.log)."""
    out = tmp_path / "r"
    # min_agreement 1.0 with int8 on a tiny random model: any flipped argmax must be shown.
    proc = harness(
        "run", str(tiny_run_file), "--out", str(out),
        "--set", "model.precision=int8", "--set", "model.agreement.min_agreement=1.0",
    )
    assert proc.returncode == 0, proc.stderr
    probe = json.loads((out / "record.json").read_text())["model"]["precision"]["agreement"]
    row = next(line for line in proc.stdout.splitlines() if "precision" in line and "int8" in line)
    assert f"fp32 agreement {100 * probe['agreement']:.2f}% on {probe['n']} examples" in row
    flat = " ".join(proc.stdout.split())
    if probe["agreement"] < 1.0:
        assert "below model.agreement.min_agreement" in flat
    else:
        assert "below model.agreement.min_agreement" not in flat


def test_precision_line_prints_the_probe_warning() -> None:
    from harness.cli.show import precision_line

    assert precision_line(None) is None
    fp32 = precision_line({"precision": "fp32", "reason": "fp32: as requested", "agreement": None})
    assert fp32 is not None and fp32.plain == "fp32 (fp32: as requested)"
    probe = {"agreement": 0.953125, "n": 512, "max_abs_dp": 0.62, "warning": "below 99.50%"}
    line = precision_line({"precision": "int8", "reason": "int8: as requested", "agreement": probe})
    assert line is not None
    assert line.plain == (
        "int8 (int8: as requested); fp32 agreement 95.31% on 512 examples, max |Δp| 0.6200\nbelow 99.50%"
    )


def test_show_refuses_unknown_schema_version(tmp_path: Path) -> None:
    (tmp_path / "record.json").write_text(json.dumps({"schema_version": "99"}))
    proc = harness("show", str(tmp_path))
    assert proc.returncode == ExitCode.USAGE and "unsupported schema_version '99'" in proc.stderr


def _leaf_commands(command: object, path: str = "") -> list[tuple[str, object]]:
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        return [(path, command)]
    return [leaf for name, sub in subcommands.items() for leaf in _leaf_commands(sub, f"{path} {name}".strip())]


def test_every_command_reports_errors_through_the_one_handler() -> None:
    """A command added without ``handler.command`` would print tracebacks instead of messages."""
    import typer

    from harness.cli.app import app
    from harness.cli.handler import HandledCommand

    leaves = _leaf_commands(typer.main.get_command(app))
    assert {name for name, _ in leaves} >= {
        "run", "show", "fetch", "list", "rerun", "schema", "finetune", "gate", "verify", "sign",
        "report", "sweep", "leaderboard add", "leaderboard build", "leaderboard serve",
        "leaderboard screenshot",
    }
    assert [name for name, cmd in leaves if not isinstance(cmd, HandledCommand)] == []


def test_error_message_is_printed_as_given(tmp_path: Path) -> None:
    """Brackets in a message (paths, config keys) are text, not console markup; the same under
    CliRunner (no main()) as from the console script."""
    from typer.testing import CliRunner

    from harness.cli.app import app

    missing = tmp_path / "runs[old]" / "x"
    result = CliRunner().invoke(app, ["show", str(missing)])
    assert result.exit_code == ExitCode.USAGE
    assert f"error: {missing}: no record.json found" in result.output
    proc = harness("show", str(missing))
    assert proc.returncode == ExitCode.USAGE and proc.stderr == f"error: {missing}: no record.json found\n"


def test_ctrl_c_during_a_run_keeps_finished_work(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import harness.run.pipeline
    from harness.cli.app import app

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.run.pipeline, "execute", interrupted)
    result = CliRunner().invoke(app, ["run", str(tmp_path / "run.yaml")])
    assert result.exit_code == ExitCode.INTERRUPTED
    assert "interrupted: finished work is kept; run the same command again to resume" in result.output


def test_gate_takes_several_values_per_option_from_the_console_script() -> None:
    from harness.cli.gate import expand_multi_values

    args = ["gate", "--baseline", "a1", "a2", "--candidate", "b1", "b2", "--policy", "p.yaml"]
    assert expand_multi_values(args) == [
        "gate", "--baseline", "a1", "--baseline", "a2", "--candidate", "b1", "--candidate", "b2",
        "--policy", "p.yaml",
    ]
