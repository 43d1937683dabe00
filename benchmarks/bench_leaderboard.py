"""Build time of the leaderboard site for 1,000 synthetic entries (goal: under 10 s).

    pytest benchmarks/bench_leaderboard.py --benchmark-only

Each entry is a full record (accuracy, robustness, latency, bias suites) with 1,066 predictions
(the size of the rotten-tomatoes test split), so the paired tests and the per-entry
verification (manifest digests, JSON Schema, pydantic) do real work. The entries are written
once per session; each round rebuilds the whole site from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.leaderboard.site import build_site
from harness.leaderboard.synthetic import Spec, write_entry

N_ENTRIES = 1000
N_EXAMPLES = 1066


@pytest.fixture(scope="module")
def thousand_entries(tmp_path_factory: pytest.TempPathFactory) -> Path:
    entries = tmp_path_factory.mktemp("entries")
    for i in range(N_ENTRIES):
        spec = Spec(
            f"model-{i:04d}",
            accuracy=0.55 + 0.35 * ((i * 37) % 1000) / 1000,
            asr=0.3 + 0.5 * ((i * 11) % 100) / 100,
            p50_ms=4.0 + (i * 7) % 40,
            gap=0.01 + 0.05 * ((i * 3) % 10) / 10,
            seed=i,
            n=N_EXAMPLES,
        )
        write_entry(entries, spec)
    return entries


def test_build_1000_entries(benchmark: Any, thousand_entries: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    result = benchmark.pedantic(
        build_site, args=(thousand_entries, out), rounds=3, iterations=1, warmup_rounds=0
    )
    assert result.n_entries == N_ENTRIES
    assert result.n_benchmarks == 4
    benchmark.extra_info["n_files"] = result.n_files
    benchmark.extra_info["site_bytes"] = result.total_bytes
    print(f"\n{N_ENTRIES} entries: {result.n_files} files, {result.total_bytes / 1e6:.1f} MB")
