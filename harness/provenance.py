"""Provenance: versions, machine, git state, and UTC time for every record."""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import harness

KEY_PACKAGES = (
    "torch", "transformers", "tokenizers", "safetensors", "accelerate", "peft", "textattack", "captum",
    "fairlearn", "numpy", "scipy", "scikit-learn", "pandas", "pydantic", "pytest-benchmark",
)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def git_state(folder: Path | None = None) -> tuple[str | None, bool | None]:
    """Commit and dirty flag of the git checkout holding the harness package, if any."""
    where = folder or Path(harness.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
        if commit.returncode != 0:
            return None, None
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=False,
        )
        return commit.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return None, None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name() -> str | None:
    if "torch" not in sys.modules:
        return None
    import torch

    if torch.cuda.is_available():
        return str(torch.cuda.get_device_name(0))
    return None


def os_name() -> str:
    return platform.platform()


def python_version() -> str:
    return sys.version.split()[0]
