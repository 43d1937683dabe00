"""``finetune.method: setfit`` — SetFit (Tunstall et al. 2022) through the ``setfit`` library.

SetFit's procedure: draw ``num_iterations`` positive and negative pairs per training example
(``2 R n`` pairs), fine-tune the sentence encoder contrastively on them (cosine-similarity loss,
``body_epochs``, ``body_learning_rate``), embed the training texts with the tuned encoder and fit a
logistic-regression head (``head_c``, ``head_max_iter``). The library does all of that; what
harness does around it: the same split selection, few-shot draw, cache key and model card as
every fine-tune, dev accuracy after training, and a pickle-free checkpoint (the encoder as
safetensors via sentence-transformers, the head's coefficients in ``head.safetensors``, read
by the ``setfit`` model kind) instead of setfit's ``model_head.pkl``.

Departures, recorded in the card: no mid-training resume (a SetFit fine-tune on K-shot data takes
seconds to a minute; an interrupted one starts again), and no dev-based step selection (SetFit
has no such step; the dev split is only evaluated). setfit, sentence-transformers and datasets
are imported only here, when a SetFit fine-tune starts.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import ModelError
from harness.models.finetune.cache import CARD, checkpoint_digest
from harness.models.finetune.card import build_card, data_card, eval_metrics, hardware
from harness.models.finetune.methods import SetFitParams, method_params_card
from harness.store import atomic_write_json

if TYPE_CHECKING:
    from harness.models.finetune.training import TrainingJob

DEPARTURES = [
    "no mid-training resume: an interrupted SetFit fine-tune starts again",
    "no dev-based selection: the dev split is evaluated after training only",
    "head saved as safetensors coefficients (head.safetensors), not setfit's pickled model_head.pkl",
]


def train_setfit(job: TrainingJob, device: str, logger: logging.Logger) -> tuple[dict[str, Any], str]:
    """Train, evaluate on dev, write the checkpoint and its card; (card, checkpoint digest)."""
    import torch
    from datasets import Dataset as HFDataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    from sklearn.linear_model import LogisticRegression

    ft = job.ft
    params = SetFitParams.model_validate(ft.params or {})
    torch.manual_seed(job.seed)
    try:
        model = SetFitModel.from_pretrained(str(job.base.folder), local_files_only=True, device=device)
    except (OSError, ValueError) as exc:
        raise ModelError(f"finetune.base: cannot load {job.base.name!r} as a sentence encoder ({exc})") from None
    model.model_head = LogisticRegression(C=params.head_c, max_iter=params.head_max_iter, random_state=job.seed)
    scratch = Path(tempfile.mkdtemp(prefix="setfit-", dir=job.folder))  # never the working dir
    args = TrainingArguments(
        output_dir=str(scratch / "checkpoints"), logging_dir=str(scratch / "logs"),
        save_strategy="no", batch_size=ft.batch_size, num_epochs=params.body_epochs,
        num_iterations=params.num_iterations, body_learning_rate=params.body_learning_rate,
        max_length=ft.max_length, seed=job.seed, show_progress_bar=False, report_to="none",
        warmup_proportion=ft.warmup_ratio,
    )  # fmt: skip
    data = HFDataset.from_dict({"text": list(job.train.texts), "label": list(job.train.labels)})
    trainer = Trainer(model=model, args=args, train_dataset=data)
    logger.info("fine-tuning %s (setfit) on %d examples", job.base.name, len(job.train))
    t0 = time.perf_counter()
    try:
        trainer.train()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.perf_counter() - t0
    final_dev = _dev(model, job)
    _save(model, job)
    digest = checkpoint_digest(job.folder)
    card = _card(job, model, params, seconds, final_dev, device, digest)
    atomic_write_json(job.folder / CARD, card)  # last: marks the checkpoint complete
    return card, digest


def _dev(model: Any, job: TrainingJob) -> dict[str, Any] | None:
    if job.dev is None:
        return None
    probs = np.asarray(model.predict_proba(list(job.dev.texts), as_numpy=True))
    full = np.zeros((len(job.dev), len(job.train.label_names)))
    full[:, list(model.model_head.classes_)] = probs
    scores = eval_metrics(full, np.asarray(job.dev.labels))
    return {"step": None, "split": job.ft.dev_split, "n": len(job.dev), "loss": None, **scores}


def _save(model: Any, job: TrainingJob) -> None:
    """Encoder (safetensors, sentence-transformers layout), head coefficients, labels."""
    import torch
    from safetensors.torch import save_file

    from harness.models.kinds.setfit_kind import HEAD_FILE

    model.model_body.save(str(job.folder), safe_serialization=True)
    head = model.model_head
    save_file({
        "coef": torch.tensor(np.asarray(head.coef_, dtype=np.float64)),
        "intercept": torch.tensor(np.asarray(head.intercept_, dtype=np.float64)),
        "classes": torch.tensor(np.asarray(head.classes_, dtype=np.int64)),
    }, str(job.folder / HEAD_FILE))  # fmt: skip
    atomic_write_json(job.folder / "labels.json", list(job.train.label_names))
    for leftover in (job.folder / "README.md",):  # holds a date: never the same bytes twice
        leftover.unlink(missing_ok=True)


def _card(job: TrainingJob, model: Any, params: SetFitParams, seconds: float,
          final_dev: dict[str, Any] | None, device: str, digest: str) -> dict[str, Any]:  # fmt: skip
    body = sum(p.numel() for p in model.model_body.parameters())
    head = int(np.asarray(model.model_head.coef_).size + np.asarray(model.model_head.intercept_).size)
    n = len(job.train)
    pairs = 2 * params.num_iterations * n * params.body_epochs
    hyper = {
        **job.ft.model_dump(mode="json", exclude={"base"}), "method_params": method_params_card(job.ft),
        "seed": job.seed, "pairs": pairs, "optimizer": "setfit (AdamW)", "loss": "CosineSimilarityLoss",
        "trainable_parameters": int(body + head), "total_parameters": int(body + head),
        "departures": DEPARTURES,
    }  # fmt: skip
    training = {"steps": None, "epochs": params.body_epochs, "selected_step": None, "resumed_from_step": None,
                "wall_time_s": round(seconds, 3), "examples_per_s": round(pairs / max(seconds, 1e-9), 2)}  # fmt: skip
    return build_card(
        base={"name": job.base.name, "source": job.base.source, "digest": job.base.digest},
        data=data_card(job.bundle, job.train, job.dev, job.ft), method="setfit",
        hyperparameters=hyper, log=[], final_dev=final_dev, training=training,
        hardware_info=hardware(device, False), lora_saved_as=None, checkpoint_digest=digest,
        cache_key=job.key,
    )  # fmt: skip
