"""Accuracy-pass throughput on minilm-l6 over 1,000 rotten-tomatoes test examples.

Ours (``HFClassifier.predict_proba``: length-bucketed batches padded to the longest item, run side
by side on one thread each, the last layer for [CLS] only; see harness/models/cls_forward.py) against
two peers at the same thread count: ``transformers.pipeline("text-classification",
batch_size=32)`` and a hand-written ``inference_mode`` loop (batches of 32 in data order, padded
to the longest item of each batch). Goals: >= 2x the pipeline, within 1.15x of the hand loop.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

N_EXAMPLES = 1000
BATCH = 32
THREADS = int(os.environ.get("HARNESS_BENCH_THREADS", "2"))


@pytest.fixture(scope="module")
def setup() -> dict[str, Any]:
    import torch

    from harness import artifacts
    from harness.config import DatasetConfig
    from harness.data import load_bundle
    from harness.models.hf import HFClassifier

    torch.set_num_threads(THREADS)
    test = load_bundle(DatasetConfig(name="rotten-tomatoes")).splits["test"]
    texts = list(test.sample(N_EXAMPLES, 0).texts)
    folder = artifacts.fetch("minilm-l6")
    ours = HFClassifier.load(folder, name="minilm-l6", source="artifact", label_names=["rotten", "fresh"], max_length=128, batch_size=BATCH)
    return {"texts": texts, "ours": ours, "folder": folder}


def test_ours(benchmark: Any, setup: dict[str, Any]) -> None:
    benchmark.group = "accuracy-pass"
    benchmark.extra_info["role"] = "ours"
    probs = benchmark.pedantic(setup["ours"].predict_proba, args=(setup["texts"],), rounds=3, warmup_rounds=1)
    assert probs.shape == (N_EXAMPLES, 2)


def test_peer_hand_loop(benchmark: Any, setup: dict[str, Any]) -> None:
    import torch

    model, tok = setup["ours"].model, setup["ours"].tokenizer
    texts = setup["texts"]

    def hand_loop() -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), BATCH):
                enc = tok(texts[i : i + BATCH], padding=True, truncation=True, max_length=128, return_tensors="pt")
                out.append(torch.softmax(model(**enc).logits, dim=-1).double().numpy())
        return np.concatenate(out)

    benchmark.group = "accuracy-pass"
    benchmark.extra_info["role"] = "peer"
    probs = benchmark.pedantic(hand_loop, rounds=3, warmup_rounds=1)
    np.testing.assert_allclose(probs, setup["ours"].predict_proba(texts), atol=1e-5)


def test_peer_pipeline(benchmark: Any, setup: dict[str, Any]) -> None:
    from transformers import pipeline

    pipe = pipeline("text-classification", model=setup["ours"].model, tokenizer=setup["ours"].tokenizer, device="cpu", top_k=None, truncation=True, max_length=128)
    texts = setup["texts"]
    benchmark.group = "accuracy-pass"
    benchmark.extra_info["role"] = "peer"
    out = benchmark.pedantic(lambda: pipe(texts, batch_size=BATCH), rounds=2, warmup_rounds=1)
    assert len(out) == N_EXAMPLES
