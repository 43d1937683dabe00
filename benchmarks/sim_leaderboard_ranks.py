"""Family-wise error of the leaderboard's rank intervals when every entry is truly equal.

    .venv/bin/python benchmarks/sim_leaderboard_ranks.py [--reps 4000]

For k equal entries (k(k−1)/2 pairs, Holm-adjusted at alpha 0.05) it prints the share of seeded
replications in which any pair is separated, for the paired exact McNemar test (per-example
predictions on n shared examples) and for the test from two 95% Wilson intervals (independent
accuracies at p). Each figure must be at most alpha (0.05) up to Monte Carlo error; the fast
version runs in tests/test_leaderboard_ranking.py. The simulation itself lives there, so the
test and this table measure the same thing.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_leaderboard_ranking import familywise_rate

SETTINGS = [
    (kind, k, n, p)
    for kind in ("mcnemar", "interval")
    for k in (3, 5, 10)
    for n in (10, 30, 300, 1066)
    for p in ((0.8,) if kind == "mcnemar" else (0.5, 0.8, 0.95))
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=4000, help="replications per setting")
    reps = parser.parse_args().reps
    print(f"| test | entries | n | p | family-wise error (reps={reps}) | ± 2 s.e. |")
    print("|---|---|---|---|---|---|")
    for i, (kind, k, n, p) in enumerate(SETTINGS):
        rate = familywise_rate(kind, n, k=k, p=p, reps=reps, seed=1000 + i)
        half = 2 * math.sqrt(max(rate * (1 - rate), 1e-12) / reps)
        print(f"| {kind} | {k} | {n} | {p:g} | {rate:.4f} | {half:.4f} |", flush=True)


if __name__ == "__main__":
    main()
