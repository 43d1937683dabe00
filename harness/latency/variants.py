"""Cheaper variants of the evaluated model, measured beside it so a user sees the trade-off.

Dynamic int8 quantization (CPU): ``torch.ao.quantization.quantize_dynamic`` on a deep copy of
the model replaces every ``nn.Linear`` by an int8-weight version whose activations are
quantized on the fly; embeddings, layer norms and attention products stay float32. The copy is
wrapped in a new adapter sharing the tokenizer, so the suite times it exactly as the original.
bf16 needs no weight copy: a second adapter over the same module runs its forwards under
autocast (CPU AVX512-BF16 / AMX, or CUDA), so the fp32, bf16 and int8 figures come from one run.
"""

from __future__ import annotations

import importlib
import statistics
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.stats import paired_bootstrap_pvalue

if TYPE_CHECKING:
    from harness.data import Dataset
    from harness.latency.scenarios import Bench
    from harness.latency.session import Session
    from harness.predictions import Predictions


def int8_copy(model: Any) -> Any | None:
    """A dynamically quantized copy of an ``HFClassifier`` on CPU, or None where unsupported."""
    import copy

    import torch

    quantize_dynamic: Any = importlib.import_module("torch.ao.quantization").quantize_dynamic

    from harness.models.hf import HFClassifier

    if not isinstance(model, HFClassifier) or model.device != "cpu":
        return None
    with warnings.catch_warnings():
        # torch >= 2.10 deprecates quantized tensor dtypes in favour of torchao; the eager API
        # still works and is what this variant documents, so the notice is not repeated per run.
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
        warnings.filterwarnings(
            "ignore", message=".*torch.ao.quantization.*", category=DeprecationWarning
        )
        quantized = quantize_dynamic(
            copy.deepcopy(model.model), {torch.nn.Linear}, dtype=torch.qint8
        )
    quantized.eval()
    return HFClassifier(
        model=quantized,
        tokenizer=model.tokenizer,
        label_names=model.label_names,
        device="cpu",
        max_length=model.max_length,
        batch_size=model.batch_size,
        precision="int8",
        info=model.info().model_copy(update={"dtype": "int8 (dynamic, nn.Linear)"}),
    )


def bf16_copy(model: Any) -> Any | None:
    """An adapter over the same weights whose forwards run under bf16 autocast, or None."""
    from harness.models.hf import HFClassifier

    if not isinstance(model, HFClassifier) or model.precision not in ("fp32", "bf16"):
        return None
    return HFClassifier(
        model=model.model, tokenizer=model.tokenizer, label_names=model.label_names,
        device=model.device, max_length=model.max_length, batch_size=model.batch_size,
        precision="bf16", info=model.info().model_copy(update={"dtype": "bf16 (autocast)"}),
    )  # fmt: skip


COPIES = {"int8": int8_copy, "bf16": bf16_copy}


def accuracy_change(
    labels: Sequence[int],
    base_predicted: Sequence[int],
    variant_predicted: Sequence[int],
    *,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """Accuracy of both, the paired difference (variant − base) with a bootstrap CI, agreement."""
    y = np.asarray(labels, dtype=np.int64)
    base = np.asarray(base_predicted, dtype=np.int64) == y
    variant = np.asarray(variant_predicted, dtype=np.int64) == y
    n = int(y.size)
    if n == 0:
        return {
            "n": 0,
            "base_accuracy": None,
            "accuracy": None,
            "delta": None,
            "ci": [None, None],
            "ci_method": None,
            "p_value": None,
            "agreement": None,
        }

    def diff(idx: np.ndarray[Any, np.dtype[np.int64]]) -> float:
        return float(variant[idx].mean() - base[idx].mean())

    p_value, ci = paired_bootstrap_pvalue(diff, n, n_boot=n_boot, seed=seed)
    return {
        "n": n,
        "base_accuracy": float(base.mean()),
        "accuracy": float(variant.mean()),
        "delta": float(variant.mean() - base.mean()),
        "ci": [ci.low, ci.high],
        "ci_method": ci.method,
        "p_value": p_value,
        "agreement": float(np.mean(np.asarray(base_predicted) == np.asarray(variant_predicted))),
    }


def measure_int8(model: Any, data: Dataset, session: Session, **kw: Any) -> dict[str, Any] | None:
    """``measure_variant`` for the dynamic int8 copy (kept for callers of the int8 option)."""
    return measure_variant("int8", model, data, session, **kw)


def measure_variant(
    kind: str,
    model: Any,
    data: Dataset,
    session: Session,
    *,
    texts: Sequence[str],
    pool: Sequence[str],
    config: tuple[int, int],
    benches: tuple[Bench, Bench],
    threads: int,
    eval_examples: int | None,
    predictions: Predictions,
    seed: int,
    n_boot: int,
) -> dict[str, Any] | None:
    """Time the ``kind`` variant (``COPIES``; batch-1 forward, and the forward at ``config`` =
    (batch, length)) and its accuracy and argmax agreement with the original on a deterministic
    sample of the evaluation split; None when unsupported."""
    from harness.latency.scenarios import offline_jobs, single_stream_jobs

    qmodel = COPIES[kind](model)
    if qmodel is None:
        return None
    batch, length = config
    ss_bench, bench = benches
    jobs = single_stream_jobs(qmodel, texts, ss_bench, prefix=f"{kind}/")
    jobs += offline_jobs(qmodel, pool, bench, batch_sizes=[batch], lengths=[length], prefix=f"{kind}/")
    session.execute([j for j in jobs if j.params["part"] == "forward"], threads)
    row = _variant_predictions(kind, qmodel, data, session, threads, eval_examples, seed)
    position = {pid: i for i, pid in enumerate(predictions.ids)}
    base = predictions.probabilities.argmax(axis=1)
    pairs = [
        (position[i], int(v))
        for i, v in zip(row["ids"], row["predicted"], strict=True)
        if i in position
    ]
    change = accuracy_change(
        [predictions.labels[k] for k, _ in pairs],
        [int(base[k]) for k, _ in pairs],
        [v for _, v in pairs],
        n_boot=n_boot,
        seed=seed,
    )

    def p50(rid: str) -> float:
        return statistics.median(session.seconds(rid))

    off = f"offline/bs{batch}/len{length}/forward"
    return {
        "single_stream_p50_ms": p50(f"{kind}/single_stream/forward") * 1000.0,
        "single_stream_speedup": p50("single_stream/forward") / p50(f"{kind}/single_stream/forward"),
        "offline_config": {"batch_size": batch, "seq_len": length},
        "offline_speedup": p50(off) / p50(f"{kind}/{off}"),
        "original_precision": getattr(model, "precision", None),
        "accuracy": change,
    }


def _variant_predictions(
    kind: str, qmodel: Any, data: Dataset, session: Session, threads: int, eval_examples: int | None,
    seed: int,
) -> dict[str, Any]:
    """The variant's predictions on a deterministic sample of the evaluation split, from the
    session when an earlier, interrupted session recorded them (they are kept like timings)."""
    from harness.latency.session import measuring

    row = session.found(f"{kind}/accuracy")
    if row is None:
        subset = data.sample(eval_examples, seed)
        with measuring(threads):
            predicted = qmodel.predict_proba(list(subset.texts)).argmax(axis=1).tolist()
        row = {
            "id": f"{kind}/accuracy",
            "scenario": kind,
            "ids": list(subset.ids),
            "predicted": [int(v) for v in predicted],
        }
        session.record(row)
    return row
