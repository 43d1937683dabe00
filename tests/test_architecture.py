"""The architecture holds itself: import-linter's contracts (pyproject.toml) pass on the tree and
fail on a deliberate violation, so a consumer that starts importing torch breaks `make test`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )


@pytest.fixture()
def copy(tmp_path: Path) -> Path:
    """The package and its contracts in a fresh folder (imports resolve to the copy)."""
    shutil.copytree(ROOT / "harness", tmp_path / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_contracts_hold_on_the_tree(copy: Path) -> None:
    result = lint(copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "edge"),
    [
        ("gate/evaluate.py", "import torch", "Consumers never import a model stack or a suite", "harness.gate.evaluate -> torch"),
        ("reports/audit.py", "from harness.suites import base", "Consumers never import a model stack or a suite", "harness.suites"),
        ("bias/swaps.py", "import harness.suites.bias", "Parts never import the suites that compose them", "harness.suites.bias"),
        ("records.py", "import harness.gate.rules", "Layers", "harness.records -> harness.gate.rules"),
    ],
)
def test_a_deliberate_violation_fails(copy: Path, module: str, line: str, contract: str, edge: str) -> None:
    target = copy / "harness" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # deliberate violation\n", encoding="utf-8")
    result = lint(copy)
    assert result.returncode == 1, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken and edge in broken, broken
