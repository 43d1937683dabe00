"""Benchmark helpers: every claim is a ratio against a named peer measured in the same run.

A benchmark marks itself ``benchmark.extra_info["role"] = "ours"`` or ``"peer"`` and sets a
``benchmark.group``; at the end of the session each group prints peer_median / ours_median
(> 1 means ours is faster). Set ``HARNESS_BENCH_RESULTS=path.json`` to also write the ratios.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest


def _ratios(config: pytest.Config) -> list[dict[str, Any]]:
    session = getattr(config, "_benchmarksession", None)
    if session is None:
        return []
    groups: dict[str, dict[str, Any]] = {}
    for bench in session.benchmarks:
        if not getattr(bench, "stats", None):
            continue
        role = bench.extra_info.get("role")
        group = groups.setdefault(bench.group or bench.name, {"ours": None, "peers": {}})
        stats = bench.stats
        median = getattr(stats, "stats", stats).median  # pytest-benchmark 4 nests Stats, 5 does not
        if role == "ours":
            group["ours"] = (bench.name, median)
        elif role == "peer":
            group["peers"][bench.name] = median
    out = []
    for name, group in sorted(groups.items()):
        if group["ours"] is None:
            continue
        ours_name, ours = group["ours"]
        for peer, median in sorted(group["peers"].items()):
            out.append({"group": name, "ours": ours_name, "peer": peer, "ours_median_s": ours, "peer_median_s": median, "speedup": median / ours})
    return out


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    rows = _ratios(config)
    if not rows:
        return
    terminalreporter.section("speed-ups against named peers (peer median / ours median)")
    for r in rows:
        terminalreporter.write_line(
            f"{r['group']}: {r['ours']} vs {r['peer']}: {r['speedup']:.2f}x "
            f"(ours {r['ours_median_s'] * 1e3:.1f} ms, peer {r['peer_median_s'] * 1e3:.1f} ms)"
        )
    target = os.environ.get("HARNESS_BENCH_RESULTS")
    if target:
        with open(target, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=2)
