"""The model card of a fine-tuned checkpoint (base, data, recipe, dev curve, hardware,
versions) and the training log it is built from.

Tests, the cache and the callbacks read this module for its constants (``TRAIN_LOG``,
``BEST_DIR``) and ``read_log``, so it imports neither transformers nor the callbacks; torch and
transformers are imported only inside ``hardware`` and ``versions``, when a card is written.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.store import iter_jsonl

if TYPE_CHECKING:
    from harness.config import FinetuneConfig
    from harness.data import Dataset, DatasetBundle

TRAIN_LOG = "train_log.jsonl"
BEST_DIR = "best"


def eval_metrics(logits: Any, labels: Any) -> dict[str, float]:
    """Accuracy and macro F1 (over classes present in labels or predictions, as scikit-learn)."""
    pred = np.asarray(logits).argmax(axis=-1)
    gold = np.asarray(labels)
    f1s = []
    for c in np.union1d(gold, pred):
        tp = float(np.sum((pred == c) & (gold == c)))
        denom = float(np.sum(pred == c) + np.sum(gold == c))
        f1s.append(2 * tp / denom if denom else 0.0)
    return {"accuracy": float(np.mean(pred == gold)), "f1_macro": float(np.mean(f1s))}


def read_log(path: Path) -> list[dict[str, Any]]:
    """The rows of a training log; none if it does not exist yet. A line torn by a crash
    mid-write is skipped: the Trainer logs that step again when the run resumes."""
    if not path.is_file():
        return []
    return [row for _, row in iter_jsonl(path, skip_bad_lines=True)]


def dev_curve(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "step": r["step"],
            "epoch": r.get("epoch"),
            "loss": r.get("eval_loss"),
            "accuracy": r.get("eval_accuracy"),
            "f1_macro": r.get("eval_f1_macro"),
        }
        for r in log
        if "eval_loss" in r
    ]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: str, bf16: bool) -> dict[str, Any]:
    import torch

    return {
        "device": device,
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None,  # this rank's
        "precision": "bf16" if bf16 else "fp32",
    }


def versions(method: str) -> dict[str, str]:
    import sys

    import torch
    import transformers

    from harness import __version__

    out = {
        "harness": __version__,
        "python": sys.version.split()[0],
        "torch": str(torch.__version__),
        "transformers": transformers.__version__,
    }
    if method in ("lora", "adalora", "ia3", "prompt_tuning", "prefix_tuning"):
        import peft

        out["peft"] = peft.__version__
    if method == "setfit":
        import sentence_transformers
        import setfit

        out["setfit"] = setfit.__version__
        out["sentence_transformers"] = sentence_transformers.__version__
    return out


def data_card(
    bundle: DatasetBundle, train: Dataset, dev: Dataset | None, ft: FinetuneConfig
) -> dict[str, Any]:
    """The card's data section: dataset, splits with their sizes and digests."""

    def split(ds: Dataset | None, name: str | None) -> dict[str, Any] | None:
        return None if ds is None else {"split": name, "n": len(ds), "digest": ds.digest()}

    return {
        "name": bundle.name,
        "source": bundle.source,
        "label_names": list(train.label_names),
        "train": split(train, ft.train_split),
        "dev": split(dev, ft.dev_split),
        "max_train_examples": ft.max_train_examples,
        # Few-shot: the K per class and the ids drawn (the whole draw, so it can be audited).
        **({"shots": ft.shots, "shot_ids": list(train.ids)} if ft.shots is not None else {}),
    }


def build_card(
    *,
    base: dict[str, Any],
    data: dict[str, Any],
    method: str,
    hyperparameters: dict[str, Any],
    log: list[dict[str, Any]],
    final_dev: dict[str, Any] | None,
    training: dict[str, Any],
    hardware_info: dict[str, Any],
    lora_saved_as: str | None,
    checkpoint_digest: str,
    cache_key: str,
) -> dict[str, Any]:
    """The model card: everything needed to know how this checkpoint was made."""
    return {
        "card_version": 1,
        "base_model": base,
        "data": data,
        "method": method,
        "lora_saved_as": lora_saved_as,
        "hyperparameters": hyperparameters,
        "dev_curve": dev_curve(log),
        "final_dev": final_dev,
        "training": training,
        "hardware": hardware_info,
        "versions": versions(method),
        "checkpoint_digest": checkpoint_digest,
        "cache_key": cache_key,
    }
