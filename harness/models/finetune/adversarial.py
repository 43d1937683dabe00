"""Adversarial fine-tuning (``finetune.adversarial``): what a fine-tune adds when it is hardened.

Two families, one hook each in ``training``:

- **attack** (TextAttack's ``Trainer`` recipe, Yoo & Qi 2021 style): after ``warmup_epochs``
  clean epochs, each epoch starts by attacking a seeded sample of ``ratio`` x N training
  examples with ``recipe`` against the model as it is then, and the successful adversarial
  texts are trained on with their true labels during that epoch. The epoch has a fixed N + M
  rows: M slots hold that epoch's adversarial examples, and the slots of failed attacks (every
  slot during warm-up) hold a clean copy whose label is -100, which the loss ignores. So the
  learning-rate schedule, the sampler and resume positions are those of a fixed-size dataset
  (TextAttack instead rebuilds a variable-size dataloader each epoch). Each epoch's attacks are
  appended row by row to ``adversarial/epoch-E.jsonl`` in the fine-tune folder: a resumed
  fine-tune reads the finished rows and attacks only the rest (the model at the epoch's start
  is bitwise the same after a resume, so the rest are the attacks it would have made).
- **fgm / pgd / freelb**: the loss adds (FGM, PGD) or replaces by (FreeLB) the loss at input
  embeddings moved by a per-example L2-bounded perturbation in the loss's ascent direction
  (``adversarial_torch``).

The attacks themselves live in ``harness/robust`` (a layer above this one) and are reached
through ``registry.adversarial_augmenters``. This module imports neither torch nor
transformers; ``adversarial_torch`` does, when a fine-tune starts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import registry
from harness.config import AdversarialConfig, FinetuneConfig
from harness.data import Dataset
from harness.errors import ConfigError

ENGINE = "textattack"
FOLDER = "adversarial"
IGNORE_LABEL = -100  # the label CrossEntropyLoss ignores
MSG_DISTRIBUTED = (
    "finetune.adversarial.method: 'attack' runs on one process (the attacks are not shared "
    "between ranks); use fgm, pgd or freelb with torchrun, or one process"
)
MSG_NO_ROWS = (
    "finetune.adversarial.ratio: {ratio} of {n} training examples is no example to attack; "
    "raise the ratio"
)
ATTACK_DEPARTURES = (
    "fixed-size epochs: the N clean rows plus M = ratio x N slots; slots of failed attacks and "
    "every slot during warm-up hold a clean copy with label -100 (ignored by the loss), where "
    "TextAttack's Trainer rebuilds a variable-size dataloader each epoch",
    "each example is attacked from a clean state seeded by (seed, epoch, example id), with a "
    "query and time budget; a timed-out attack adds nothing",
)
EMBEDDING_DEPARTURES = {
    "fgm": "FGM (Miyato et al. 2017): r = epsilon * g / ||g||_2 per example over its unpadded "
    "input embeddings; loss = clean + adv_weight * adversarial",
    "pgd": "PGD (Madry et al. 2018) on input embeddings: zero start, `steps` L2-normalised ascent "
    "steps of size alpha projected on the epsilon ball; loss = clean + adv_weight * adversarial",
    "freelb": "FreeLB (Zhu et al. 2020): random start of L2 size alpha, `steps` ascent steps of "
    "size alpha projected on the epsilon ball, parameter gradients averaged over the steps; the "
    "paper's dropout-mask sharing across steps is not reproduced",
}


def _own_keys(adv: AdversarialConfig) -> set[str]:
    """The parameters of ``adv.method`` (the card leaves out the other methods' defaults)."""
    from harness.config import ADVERSARIAL_ATTACK_KEYS, ADVERSARIAL_EMBEDDING_KEYS

    if adv.method == "attack":
        return {"method", *ADVERSARIAL_ATTACK_KEYS}
    skip = {"fgm": {"alpha", "steps"}, "freelb": {"adv_weight"}}.get(adv.method, set())
    return {"method", *ADVERSARIAL_EMBEDDING_KEYS} - skip


def check(ft: FinetuneConfig, world_size: int) -> None:
    """Fail before any work: an unknown recipe, or the attack method on several processes."""
    adv = ft.adversarial
    if adv is None or adv.method != "attack":
        return
    if world_size > 1:
        raise ConfigError(MSG_DISTRIBUTED)
    problem = augmenter().recipe_problem(adv.recipe)
    if problem:
        raise ConfigError(f"finetune.adversarial.recipe: {problem}")


def augmenter() -> Any:
    """The attack engine (``harness.robust.augment``), through the registry."""
    return registry.adversarial_augmenters.get(ENGINE)()


def epoch_sample(n: int, m: int, seed: int, epoch: int) -> list[int]:
    """The M training rows attacked at the start of ``epoch`` (seeded, without replacement)."""
    rng = np.random.default_rng([seed, 7919, epoch])
    return sorted(int(i) for i in rng.choice(n, size=m, replace=False))


@dataclass
class Plan:
    """What adversarial training adds to one fine-tune: the training rows (with the slots), the
    Trainer class, callbacks, and the model card's section."""

    adv: AdversarialConfig | None
    rows: list[dict[str, Any]]
    callbacks: list[Any] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)  # attack summaries, by epoch
    slots: int = 0  # M adversarial slots after the N clean rows (attack)

    def trainer_class(self, base: Any) -> Any:
        if self.adv is None:
            return base
        from harness.models.finetune.adversarial_torch import adversarial_trainer

        return adversarial_trainer(base, self.adv)

    def card(self) -> dict[str, Any] | None:
        """The model card's ``adversarial`` section (None without adversarial training)."""
        if self.adv is None:
            return None
        params = {
            k: v for k, v in self.adv.model_dump(mode="json").items() if k in _own_keys(self.adv)
        }
        if self.adv.method == "attack":
            return {
                "method": "attack",
                "parameters": params,
                "engine": ENGINE,
                "slots": self.slots,
                "epochs": sorted(self.epochs, key=lambda e: e["epoch"]),
                "departures": list(ATTACK_DEPARTURES),
            }
        return {
            "method": self.adv.method,
            "parameters": params,
            "departures": [EMBEDDING_DEPARTURES[self.adv.method]],
        }


def plan(
    ft: FinetuneConfig,
    *,
    train: Dataset,
    rows: list[dict[str, Any]],
    tokenizer: Any,
    seed: int,
    folder: Path,
    logger: logging.Logger,
) -> Plan:
    """The adversarial plan of a fine-tune (a no-op plan without ``finetune.adversarial``)."""
    adv = ft.adversarial
    if adv is None or adv.method != "attack":
        return Plan(adv=adv, rows=rows)
    m = round(adv.ratio * len(rows))
    if m < 1:
        raise ConfigError(MSG_NO_ROWS.format(ratio=adv.ratio, n=len(rows)))
    slots = SlotFiller(
        adv=adv, train=train, clean=rows, tokenizer=tokenizer, max_length=ft.max_length,
        seed=seed, folder=folder / FOLDER, logger=logger, m=m,
    )  # fmt: skip
    result = Plan(adv=adv, rows=slots.rows, epochs=slots.summaries, slots=m)
    from harness.models.finetune.adversarial_torch import attack_callback

    result.callbacks.append(attack_callback(slots))
    return result


class SlotFiller:
    """The M adversarial slots after the N clean rows, refilled at the start of each epoch."""

    def __init__(
        self,
        *,
        adv: AdversarialConfig,
        train: Dataset,
        clean: list[dict[str, Any]],
        tokenizer: Any,
        max_length: int,
        seed: int,
        folder: Path,
        logger: logging.Logger,
        m: int,
    ) -> None:
        self.adv, self.train, self.clean, self.tokenizer = adv, train, clean, tokenizer
        self.max_length, self.seed, self.folder, self.logger, self.m = (
            max_length, seed, folder, logger, m,
        )  # fmt: skip
        self.n = len(clean)
        self.rows: list[dict[str, Any]] = [*clean, *self._placeholders(0)]
        self.summaries: list[dict[str, Any]] = []
        self.filled_epoch: int | None = None
        self._read_finished_epochs()

    def _read_finished_epochs(self) -> None:
        """Summaries of the epochs a resumed fine-tune attacked before it stopped (their files
        are complete: an epoch's training starts only after its attacks)."""
        from harness.store import ExampleLog

        for path in sorted(self.folder.glob("epoch-*.jsonl")):
            epoch = int(path.stem.split("-", 1)[1])
            log = ExampleLog(path).open()
            try:
                if len(log.done) == self.m:
                    self._summarise(epoch, dict(log.done))
            finally:
                log.close()

    def _placeholders(self, epoch: int) -> list[dict[str, Any]]:
        return [
            {**self.clean[i], "labels": IGNORE_LABEL}
            for i in epoch_sample(self.n, self.m, self.seed, epoch)
        ]

    def fill(self, epoch: int, model: Any) -> None:
        """Attack this epoch's sample with ``model`` (after warm-up) and fill the slots."""
        if self.filled_epoch == epoch:
            return
        self.filled_epoch = epoch
        if epoch < self.adv.warmup_epochs:
            self.rows[self.n :] = self._placeholders(epoch)
            return
        sample = epoch_sample(self.n, self.m, self.seed, epoch)
        outcomes = self._attack(epoch, sample, model)
        slots = []
        for i in sample:
            row = outcomes[self.train.ids[i]]
            if row["result"] == "succeeded" and row.get("perturbed_text"):
                enc = self.tokenizer(
                    row["perturbed_text"], truncation=True, max_length=self.max_length
                )
                keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
                slots.append(
                    {**{k: list(enc[k]) for k in keys}, "labels": int(self.train.labels[i])}
                )
            else:
                slots.append({**self.clean[i], "labels": IGNORE_LABEL})
        self.rows[self.n :] = slots
        self._summarise(epoch, outcomes)

    def _attack(self, epoch: int, sample: list[int], model: Any) -> dict[str, dict[str, Any]]:
        """Each sampled example's attack row, from the epoch's file where it is already there."""
        from harness.store import ExampleLog

        log = ExampleLog(self.folder / f"epoch-{epoch}.jsonl").open()
        try:
            todo = [
                (self.train.ids[i], self.train.texts[i], int(self.train.labels[i]))
                for i in sample
                if self.train.ids[i] not in log.done
            ]
            if todo:
                self.logger.info(
                    "adversarial fine-tuning: epoch %d, attacking %d training examples with %s "
                    "(%d done before)", epoch, len(todo), self.adv.recipe, len(sample) - len(todo),
                )  # fmt: skip
                augmenter().attack(
                    victim_adapter(model, self.tokenizer, self.train.label_names, self.max_length),
                    todo,
                    recipe=self.adv.recipe,
                    seed=self.seed * 1000 + epoch,
                    query_budget=self.adv.query_budget,
                    time_budget_s=self.adv.time_budget_s,
                    workers=self.adv.workers,
                    on_row=log.append,
                )
            return dict(log.done)
        finally:
            log.close()

    def _summarise(self, epoch: int, outcomes: dict[str, dict[str, Any]]) -> None:
        counts = {k: 0 for k in ("succeeded", "failed", "skipped", "timed_out")}
        for row in outcomes.values():
            counts[row["result"]] = counts.get(row["result"], 0) + 1
        self.summaries[:] = [s for s in self.summaries if s["epoch"] != epoch]
        self.summaries.append(
            {"epoch": epoch, "attacked": len(outcomes), **counts, "added": counts["succeeded"]}
        )


def victim_adapter(
    model: Any, tokenizer: Any, label_names: tuple[str, ...], max_length: int
) -> Any:
    """The model being trained as a ``ModelAdapter`` (what the attacks query)."""
    from harness.models.hf import HFClassifier
    from harness.records import ModelInfo

    device = str(next(model.parameters()).device.type)
    info = ModelInfo(
        name="fine-tune in progress", source="finetune", location="(in memory)", digest="",
        label_names=list(label_names), max_length=max_length,
    )  # fmt: skip
    return HFClassifier(
        model=model, tokenizer=tokenizer, label_names=label_names, device=device,
        max_length=max_length, batch_size=64, precision="fp32", info=info,
    )  # fmt: skip
