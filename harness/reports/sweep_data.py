"""The numbers of a sweep report: seed-level accuracies per (method, shots) cell of a sweep.

A sweep folder (``harness sweep`` output) holds ``sweep.json`` and one run folder per job. Each
finished job's record says its method (``finetune.method``), shots (``finetune.shots``; unset is
"all"), seed and test accuracy. Cells are summarised over seeds (mean, sample std, Student-t
interval) and methods are compared at each K paired by seed: ``scipy.stats.ttest_rel`` and the
gate's exact sign-flip test on the seed-level differences. With fewer than ``MIN_SEEDS`` common
seeds the comparison says it cannot tell rather than print a p-value from one or two numbers.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import RecordError
from harness.records import load_record
from harness.render.curves import sweep_cell
from harness.stats import t_mean_ci
from harness.stats.paired import sign_flip_test

SWEEP_FILE = "sweep.json"
MIN_SEEDS = 3
NOT_A_SWEEP = "{path}: no {name} here; `harness report` wants a run folder or a sweep folder"
NO_SHOTS = (
    "{path}: not a learning-curve sweep: no finished job sets finetune.shots "
    "(sweep over finetune.shots to get a curve)"
)
TOO_FEW = "too few seeds to tell (n = {n} paired, need {need})"


@dataclass(frozen=True)
class RunPoint:
    """One finished job: where it lives and what it measured."""

    name: str
    run_dir: str
    method: str
    shots: int | None
    seed: int | None
    accuracy: float | None
    status: str
    error: str | None = None


@dataclass(frozen=True)
class Cell:
    """One (method, shots) cell over seeds."""

    method: str
    shots: int | None
    seeds: dict[int | None, float]
    mean: float
    std: float | None
    low: float | None
    high: float | None

    @property
    def n(self) -> int:
        return len(self.seeds)


@dataclass(frozen=True)
class Comparison:
    """Method ``a`` against ``b`` at one K, paired by seed."""

    shots: int | None
    a: str
    b: str
    n: int
    mean_diff: float | None
    t_p: float | None
    sign_flip_p: float | None
    verdict: str


@dataclass
class Sweep:
    """Everything the sweep report shows."""

    path: Path
    runs: list[RunPoint] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)


def _accuracy(run_dir: Path) -> tuple[dict[str, Any], float | None]:
    record = load_record(run_dir / "record.json")
    for suite in record.suites:
        metric = suite.metric("accuracy")
        if metric is not None and metric.value is not None and math.isfinite(metric.value):
            return record.config, float(metric.value)
    return record.config, None


def _run_point(job: dict[str, Any], base: Path) -> RunPoint:
    name, status = str(job.get("name") or job.get("id")), str(job.get("status"))
    run_dir = Path(str(job.get("run_dir") or base / str(job.get("id"))))
    if (base / run_dir.name).is_dir():  # a copied or moved sweep folder: its own run folders
        run_dir = base / run_dir.name
    if status not in ("ok", "reused") or not (run_dir / "record.json").is_file():
        err = job.get("error") or ("no record.json" if status in ("ok", "reused") else None)
        return RunPoint(name, str(run_dir), "?", None, None, None, status, err and str(err))
    config, acc = _accuracy(run_dir)
    method, shots = sweep_cell(config)  # a plain classifier: its kind at 0 shots
    seed = config.get("seed")
    return RunPoint(
        name, str(run_dir), method, shots, None if seed is None else int(seed), acc, status
    )


def _cell(method: str, shots: int | None, seeds: dict[int | None, float]) -> Cell:
    values = np.array(list(seeds.values()), dtype=np.float64)
    ci = t_mean_ci(values, bounds=(0.0, 1.0))
    low, high = ci.low, ci.high
    std = float(values.std(ddof=1)) if values.size > 1 else None
    return Cell(method, shots, seeds, float(values.mean()), std, low, high)


def compare(a: Cell, b: Cell) -> Comparison:
    """Paired by seed: ttest_rel and the sign-flip test; too few common seeds → cannot tell."""
    common = sorted((s for s in a.seeds if s in b.seeds), key=lambda s: (s is None, s or 0))
    x = np.array([a.seeds[s] for s in common])
    y = np.array([b.seeds[s] for s in common])
    n = len(common)
    if n < MIN_SEEDS:
        mean = float((x - y).mean()) if n else None
        return Comparison(a.shots, a.method, b.method, n, mean, None, None,
                          TOO_FEW.format(n=n, need=MIN_SEEDS))  # fmt: skip
    from scipy.stats import ttest_rel

    d = x - y
    t_p = float(ttest_rel(x, y).pvalue) if np.any(d != d[0]) else None
    sf_p, _ = sign_flip_test(d)
    winner = a.method if d.mean() > 0 else b.method
    floor = 2.0 / 2 ** int(np.count_nonzero(d))
    if (t_p is None or t_p < 0.05) and sf_p < 0.05:
        verdict = f"{winner} better (p < 0.05, both tests)"
    elif t_p is not None and t_p < 0.05:
        verdict = (f"{winner} better by the t-test (p < 0.05); the sign-flip test cannot go "
                   f"below {floor:.4g} with {n} seeds")  # fmt: skip
    else:
        verdict = "no significant difference"
    return Comparison(a.shots, a.method, b.method, n, float(d.mean()), t_p, sf_p, verdict)


def load_sweep(folder: Path) -> Sweep:
    """Read ``sweep.json`` and every finished job's record; errors name the sweep file."""
    path = folder / SWEEP_FILE
    if not path.is_file():
        raise RecordError(NOT_A_SWEEP.format(path=folder, name=SWEEP_FILE))
    try:
        jobs = json.loads(path.read_text(encoding="utf-8"))["jobs"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordError(f"{path}: not a sweep file ({exc})") from exc
    sweep = Sweep(path, [_run_point(job, folder) for job in jobs])
    done = [r for r in sweep.runs if r.accuracy is not None]
    if not any(r.shots is not None for r in done):
        raise RecordError(NO_SHOTS.format(path=path))
    grouped: dict[tuple[str, int | None], dict[int | None, float]] = defaultdict(dict)
    for r in done:
        grouped[(r.method, r.shots)][r.seed] = r.accuracy  # type: ignore[assignment]
    order = sorted(grouped, key=lambda k: (k[0], k[1] is None, k[1] or 0))
    sweep.cells = [_cell(m, k, grouped[(m, k)]) for m, k in order]
    by_k: dict[int | None, list[Cell]] = defaultdict(list)
    for c in sweep.cells:
        by_k[c.shots].append(c)
    for cells in by_k.values():
        sweep.comparisons += [compare(a, b) for i, a in enumerate(cells) for b in cells[i + 1 :]]
    return sweep
