"""Attack throughput: our robustness suite against TextAttack's own Attacker, same outcomes.

The issue's setting by default: the fine-tuned default model (``make demo``'s cached checkpoint;
``HARNESS_BENCH_MODEL`` names another folder; minilm-l6 with a fresh seeded head if neither is
there), 100 rotten-tomatoes test examples (deterministic sample), PWWS and DeepWordBug. Peers,
in the same run:

(a) ``Attacker`` with TextAttack's stock ``HuggingFaceModelWrapper`` (pads every query batch to
    ``model_max_length``, 512 for MiniLM), on the first ``HARNESS_BENCH_N_STOCK`` (10) examples:
    ~10 s per example, so the full 100 would take half an hour of peer time alone;
(b) ``Attacker`` with a wrapper that pads to the longest item, on ``HARNESS_BENCH_N`` (100).

Every peer attacks each example with a fresh cache and the same per-example seed as our suite,
so outcomes must be identical; the test fails otherwise. Speed-up = peer time / our time on the
same examples (printed by benchmarks/conftest.py).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

N = int(os.environ.get("HARNESS_BENCH_N", "100"))
N_STOCK = int(os.environ.get("HARNESS_BENCH_N_STOCK", "10"))
WORKERS = int(os.environ.get("HARNESS_BENCH_WORKERS", "2"))
THREADS = int(os.environ.get("HARNESS_BENCH_THREADS", "2"))
RECIPES = ["pwws", "deepwordbug"]
KEYS = ("result", "perturbed_text", "perturbed_pred", "queries")
OUTCOMES: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module")
def setup() -> dict[str, Any]:
    import torch

    from harness import artifacts
    from harness.config import DatasetConfig
    from harness.data import load_bundle
    from harness.models.hf import HFClassifier
    from harness.robust.resources import AttackResources
    from harness.robust.textattack_adapter import load_textattack

    torch.set_num_threads(THREADS)
    test = load_bundle(DatasetConfig(name="rotten-tomatoes")).splits["test"]
    from default_model import bench_model_folder

    folder, described = bench_model_folder("HARNESS_BENCH_MODEL")
    print(f"\nrobustness benchmark model: {described}")
    torch.manual_seed(0)  # a fresh head is drawn from torch's RNG
    if folder is not None:
        model = HFClassifier.load(folder, name="bench", source="path", max_length=128)
    else:
        folder = artifacts.fetch("minilm-l6")
        model = HFClassifier.load(
            folder,
            name="minilm-l6",
            source="artifact",
            label_names=["rotten", "fresh"],
            max_length=128,
        )
    resources = AttackResources.fetch()
    load_textattack(resources)
    from nltk.corpus import wordnet

    wordnet.synsets("good")  # nobody pays WordNet's first load inside a timed run
    return {"data": test, "model": model, "resources": resources}


def _ours(setup: dict[str, Any], n: int) -> dict[str, Any]:
    from harness.store import ExampleLog
    from harness.suites.base import SuiteContext
    from harness.suites.robustness import RobustnessParams, RobustnessSuite

    params = RobustnessParams(
        recipes=RECIPES, n_examples=n, query_budget=None, time_budget_s=None, validity=False
    )
    with tempfile.TemporaryDirectory() as tmp, ExampleLog(Path(tmp) / "r.jsonl") as log:
        ctx = SuiteContext(
            seed=0,
            run_dir=Path(tmp),
            examples=log,
            logger=logging.getLogger("bench"),
            predictions=lambda: None,
            workers=WORKERS,
        )
        RobustnessSuite(params=params).run(setup["model"], setup["data"], ctx)
        return {k: {f: r[f] for f in KEYS} for k, r in log.done.items()}


def _peer(setup: dict[str, Any], n: int, wrapper: Any) -> dict[str, Any]:
    from harness.robust import attacks
    from harness.robust.engine import example_seed

    sample = setup["data"].sample(n, 0)
    out = {}
    for recipe in RECIPES:
        attack = attacks.build_attack(recipe, wrapper, setup["resources"], query_budget=None)
        for eid, text, label in zip(sample.ids, sample.texts, sample.labels, strict=True):
            attack.clear_cache()  # a fresh attack per example, as our suite does
            row = attacks.attacker_run(
                attack, text, label, seed=example_seed(0, recipe, eid), query_budget=None
            )
            out[f"{recipe}:{eid}"] = {f: row[f] for f in KEYS}
    return out


def _bench(benchmark: Any, group: str, role: str, fn: Any, *args: Any) -> dict[str, Any]:
    benchmark.group = group
    benchmark.extra_info["role"] = role
    result: dict[str, Any] = benchmark.pedantic(fn, args=args, rounds=1, iterations=1)
    return result


def test_ours_stock_set(benchmark: Any, setup: dict[str, Any]) -> None:
    OUTCOMES["ours_stock"] = _bench(
        benchmark, f"robustness-{N_STOCK}", "ours", _ours, setup, N_STOCK
    )


def test_peer_stock_wrapper(benchmark: Any, setup: dict[str, Any]) -> None:
    from harness.robust.attacks import stock_hf_wrapper

    model = setup["model"]
    wrapper = stock_hf_wrapper(model.model, model.tokenizer)
    peer = _bench(benchmark, f"robustness-{N_STOCK}", "peer", _peer, setup, N_STOCK, wrapper)
    assert peer == OUTCOMES["ours_stock"]


def test_ours(benchmark: Any, setup: dict[str, Any]) -> None:
    OUTCOMES["ours"] = _bench(benchmark, f"robustness-{N}", "ours", _ours, setup, N)


def test_peer_pad_to_longest(benchmark: Any, setup: dict[str, Any]) -> None:
    from harness.robust.attacks import PadToLongestWrapper

    model = setup["model"]
    wrapper = PadToLongestWrapper(model.model, model.tokenizer, model.max_length)
    peer = _bench(benchmark, f"robustness-{N}", "peer", _peer, setup, N, wrapper)
    assert peer == OUTCOMES["ours"]
    kinds = {r["result"] for r in peer.values()}
    benchmark.extra_info["outcomes"] = {
        k: sum(r["result"] == k for r in peer.values()) for k in sorted(kinds)
    }
