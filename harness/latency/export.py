"""The suite's measurements as a pytest-benchmark JSON file.

The layout is the one pytest-benchmark's ``--benchmark-json`` writes (``machine_info``,
``commit_info``, ``benchmarks``, ``datetime``, ``version``); machine and commit information come
from pytest-benchmark's own hooks, and each benchmark is the fixture's ``as_dict`` entry with its
raw round times. So ``pytest-benchmark compare run1/latency.benchmark.json
run2/latency.benchmark.json`` works on harness results, and so does a comparison with a
pytest-benchmark session's saved runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.latency.timing import pytest_benchmark
from harness.store import atomic_write_json

BENCHMARK_FILE = "latency.benchmark.json"


def machine_info(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """pytest-benchmark's machine description, plus the harness's (torch, threads, device)."""
    plugin = pytest_benchmark("plugin")
    info: dict[str, Any] = dict(plugin.pytest_benchmark_generate_machine_info())
    info.update(extra or {})
    return info


def commit_info() -> dict[str, Any]:
    return dict(pytest_benchmark("utils").get_commit_info("harness"))


def benchmark_document(
    entries: Iterable[Mapping[str, Any]],
    *,
    machine: Mapping[str, Any],
    commit: Mapping[str, Any],
) -> dict[str, Any]:
    from pytest_benchmark import __version__

    doc: dict[str, Any] = _json_safe(
        {
            "machine_info": dict(machine),
            "commit_info": dict(commit),
            "benchmarks": [dict(e) for e in entries],
            "datetime": datetime.now(UTC).isoformat(),
            "version": __version__,
        }
    )
    return doc


def write_benchmark_json(
    run_dir: Path,
    entries: Iterable[Mapping[str, Any]],
    *,
    extra_machine: Mapping[str, Any] | None = None,
) -> Path:
    path = run_dir / BENCHMARK_FILE
    doc = benchmark_document(entries, machine=machine_info(extra_machine), commit=commit_info())
    atomic_write_json(path, doc)
    return path


def _json_safe(value: Any) -> Any:
    """Plain JSON: non-finite floats become null, unknown objects their string form."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return json.loads(json.dumps(str(value)))
