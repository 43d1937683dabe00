"""One fine-tune that was not in the cache, in three steps: build the Trainer (base model,
method, tokenized splits, callbacks), fit it (resuming from the latest ``checkpoint-N``, stopping
gracefully on Ctrl-C), and finish (select the best dev step, save the checkpoint, write the model
card last).

``job.run_finetune`` decides whether this runs at all (cache, lock, process group); the Trainer's
own plumbing (arguments, world, lock, checkpoint writing) is in ``trainer``. torch and
transformers are imported inside the methods, so importing this module stays light.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import FinetuneConfig
from harness.data import Dataset, DatasetBundle
from harness.errors import ExitCode, HarnessError
from harness.models.finetune import adversarial
from harness.models.finetune.cache import CARD, checkpoint_digest
from harness.models.finetune.card import (
    TRAIN_LOG,
    build_card,
    data_card,
    eval_metrics,
    hardware,
    read_log,
)
from harness.models.finetune.methods import method, method_callbacks, method_params_card
from harness.models.finetune.prep import (
    BaseModel,
    apply_method,
    count_parameters,
    load_base,
    oom_error,
    probe_memory,
    tokenize,
)
from harness.models.finetune.trainer import (
    World,
    graceful_sigint,
    last_checkpoint,
    save_checkpoint,
    seeded_trainer_class,
    share_from_main,
    training_args,
)
from harness.models.precision import Resolved
from harness.store import atomic_write_json

MSG_INTERRUPTED = (
    "fine-tuning interrupted at step {step}; {kept}. Run the same command again to resume "
    "(or add --retrain to start over)"
)


class FinetuneInterrupted(HarnessError):
    """Ctrl-C during fine-tuning: the checkpoint is kept; exit code 130."""

    exit_code = ExitCode.INTERRUPTED


@dataclass(frozen=True)
class _Built:
    """What building the Trainer produced, for fitting and finishing."""

    trainer: Any
    tokenizer: Any
    callbacks: dict[str, Any]  # by role, see callbacks.make_callbacks
    parameters: tuple[int, int]  # (trainable, total)
    n_train: int
    total_steps: int
    bf16: bool
    adversarial: adversarial.Plan | None = None  # finetune.adversarial's rows, Trainer, card


@dataclass(frozen=True)
class _Fitted:
    """How fitting went: where it resumed from and how long it trained."""

    start_step: int  # 0 unless resumed
    resume: Path | None  # the checkpoint-N it resumed from
    train_seconds: float


@dataclass(frozen=True)
class TrainingJob:
    """Everything one fine-tune needs, resolved by ``run_finetune`` before training starts."""

    ft: FinetuneConfig
    seed: int
    base: BaseModel
    bundle: DatasetBundle
    train: Dataset
    dev: Dataset | None
    folder: Path
    key: str
    world: World
    precision: Resolved | None = None  # finetune.precision resolved (None: fp32)

    def run(
        self,
        *,
        threads: int | None,
        device: str,
        logger: logging.Logger,
        progress: bool,
        extra: Sequence[Any],
    ) -> tuple[dict[str, Any], str]:
        """Train and write the checkpoint; (model card, checkpoint digest), the same on every
        rank. ``threads`` applies on CPU for this fine-tune only."""
        import torch

        from harness.models.hf import resolve_device

        resolved = resolve_device(device)
        previous_threads = torch.get_num_threads()
        if threads and resolved == "cpu":
            torch.set_num_threads(threads)
        try:
            if method(self.ft.method).trainer == "setfit":
                from harness.models.finetune.setfit_stage import train_setfit

                return train_setfit(self, resolved, logger)  # one process: no ranks to share with
            return self._train(resolved, logger, progress, extra)
        finally:
            torch.set_num_threads(previous_threads)

    def _train(
        self, device: str, logger: logging.Logger, progress: bool, extra: Sequence[Any]
    ) -> tuple[dict[str, Any], str]:
        """Build, fit, then finish on rank 0 while the other ranks wait for its card."""
        built = self._build(device, logger, progress, extra)
        fitted = self._fit(built, device, logger)

        def write_checkpoint() -> tuple[dict[str, Any], str]:  # rank 0 only
            card = self._finish(built, fitted, hardware(device, built.bf16))
            return card, card["checkpoint_digest"]

        card, digest = share_from_main(self.world, write_checkpoint)
        logger.info("fine-tuned checkpoint written to %s", self.folder)
        return card, digest

    @property
    def global_batch(self) -> int:
        """Examples per optimizer step, over all processes."""
        return self.ft.batch_size * self.ft.gradient_accumulation * self.world.size

    def _build(
        self, device: str, logger: logging.Logger, progress: bool, extra: Sequence[Any]
    ) -> _Built:
        """Base model with its method applied, tokenized splits, a memory probe (so a batch too
        large is reported before training starts), callbacks and the Trainer."""
        from transformers import DataCollatorWithPadding, PrinterCallback

        from harness.models.finetune.callbacks import make_callbacks

        ft = self.ft
        model, tokenizer = load_base(self.base, self.train.label_names, self.seed)
        train_rows, dev_rows = self._tokenized(tokenizer)
        adv = adversarial.plan(
            ft, train=self.train, rows=train_rows, tokenizer=tokenizer, seed=self.seed,
            folder=self.folder, logger=logger,
        )  # fmt: skip
        train_rows = adv.rows  # with the attack slots, when the fine-tune is adversarial
        per_epoch = math.ceil(len(train_rows) / self.global_batch)
        total_steps = ft.max_steps or math.ceil(per_epoch * ft.epochs)
        model = apply_method(model, ft, self.base.name, total_steps)
        parameters = count_parameters(model)
        collator = DataCollatorWithPadding(tokenizer)
        probe_memory(model, train_rows, collator, ft.batch_size, device, self.world.local_rank)
        chosen = self.precision.precision if self.precision is not None else "fp32"
        bf16 = chosen == "bf16"  # autocast on CPU and CUDA; fp16 (CUDA) adds a GradScaler
        cbs = make_callbacks(
            folder=self.folder,
            metric=ft.metric_for_best,
            patience=ft.early_stopping_patience,
            logger=logger,
            progress=progress,
        )
        args = training_args(
            ft,
            folder=self.folder,
            has_dev=self.dev is not None,
            seed=self.seed,
            device=device,
            bf16=bf16,
            fp16=chosen == "fp16",
            total_steps=total_steps,
            world=self.world,
        )
        trainer = adv.trainer_class(seeded_trainer_class())(
            model=model,
            args=args,
            train_dataset=train_rows,
            eval_dataset=dev_rows,
            data_collator=collator,
            processing_class=tokenizer,
            compute_metrics=lambda p: eval_metrics(p.predictions, p.label_ids),
            callbacks=[
                *(cbs[k] for k in ("log", "best", "stop", "epoch_eval", "progress")),
                *method_callbacks(ft),
                *adv.callbacks,
                *extra,
            ],
        )
        trainer.remove_callback(PrinterCallback)  # our JSONL log and progress bar replace it
        return _Built(trainer, tokenizer, cbs, parameters, len(train_rows), total_steps, bf16, adv)

    def _tokenized(
        self, tokenizer: Any
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
        """The tokenized train rows and dev rows (sorted by length: evaluation pads less)."""
        train_rows = tokenize(tokenizer, self.train, self.ft.max_length)
        if self.dev is None:
            return train_rows, None
        return train_rows, tokenize(tokenizer, self.dev, self.ft.max_length, sort=True)

    def _fit(self, built: _Built, device: str, logger: logging.Logger) -> _Fitted:
        """Train, from the latest complete checkpoint-N if there is one. Ctrl-C (or a graceful
        stop) keeps the checkpoints and raises ``FinetuneInterrupted``."""
        import torch

        trainer, stop = built.trainer, built.callbacks["stop"]
        resume = last_checkpoint(self.folder)
        start_step = int(resume.name.split("-")[-1]) if resume is not None else 0
        if resume is not None:
            logger.info("resuming fine-tuning from %s", resume)
        logger.info(
            "fine-tuning %s (%s, %d/%d parameters trainable) on %d examples, %d steps, "
            "device %s, %d process(es)",
            self.base.name,
            self.ft.method,
            *built.parameters,
            built.n_train,
            built.total_steps,
            device,
            self.world.size,
        )
        # A graceful stop must happen at the same step on every rank, and a Ctrl-C does not
        # reach them all at the same step: with several processes Ctrl-C stops at once, and
        # a rerun resumes from the last periodic checkpoint (save_steps).
        sigint = (
            contextlib.nullcontext() if self.world.distributed else graceful_sigint(stop, logger)
        )
        t0 = time.perf_counter()
        try:
            with sigint, warnings.catch_warnings():
                # The Trainer warns about mtime ordering of checkpoints on some filesystems; it
                # then orders them by step number, which is what we want anyway.
                warnings.filterwarnings("ignore", message="mtime may not be reliable")
                trainer.train(resume_from_checkpoint=str(resume) if resume is not None else None)
                train_seconds = time.perf_counter() - t0
                if stop.requested:
                    raise KeyboardInterrupt
                self._evaluate_final_step(trainer)
        except KeyboardInterrupt:
            raise self._interrupted(trainer.state.global_step) from None
        except torch.OutOfMemoryError:
            raise oom_error(self.ft.batch_size) from None
        return _Fitted(start_step, resume, train_seconds)

    def _finish(
        self, built: _Built, fitted: _Fitted, hardware_info: dict[str, Any]
    ) -> dict[str, Any]:
        """Select on dev, write the final checkpoint and its model card (on rank 0 only)."""
        trainer = built.trainer
        final_dev, selected = self._select_on_dev(trainer)
        lora_saved_as = save_checkpoint(
            self.folder,
            trainer.model,
            built.tokenizer,
            self.train.label_names,
            self.ft,
            self.base.name,
        )
        digest = checkpoint_digest(self.folder)
        card = build_card(
            base={"name": self.base.name, "source": self.base.source, "digest": self.base.digest},
            data=data_card(self.bundle, self.train, self.dev, self.ft),
            method=self.ft.method,
            hyperparameters=self._hyperparameters(built),
            log=read_log(self.folder / TRAIN_LOG),
            final_dev=final_dev,
            training=self._training_summary(trainer, fitted, selected),
            hardware_info=hardware_info,
            lora_saved_as=lora_saved_as,
            checkpoint_digest=digest,
            cache_key=self.key,
        )
        if self.precision is not None:
            card["precision"] = self.precision.as_record()
            card["hardware"]["precision"] = self.precision.precision  # fp16 too, not just bf16
        if built.adversarial is not None and built.adversarial.card() is not None:
            card["adversarial"] = built.adversarial.card()
        atomic_write_json(self.folder / CARD, card)  # last: marks the checkpoint complete
        return card

    def _hyperparameters(self, built: _Built) -> dict[str, Any]:
        """The card's recipe: the fine-tune config plus what it resolved to on this launch."""
        trainable, total = built.parameters
        return {
            # the lora block is read by the lora method only; a full fine-tune's card omits it
            **self.ft.model_dump(
                mode="json", exclude={"base"} if self.ft.method == "lora" else {"base", "lora"}
            ),
            "method_params": method_params_card(self.ft),
            "seed": self.seed,
            "total_steps": built.trainer.state.max_steps,
            "world_size": self.world.size,
            "effective_batch_size": self.global_batch,
            "optimizer": str(getattr(built.trainer.args.optim, "value", built.trainer.args.optim)),
            "scheduler": "linear",
            "trainable_parameters": trainable,
            "total_parameters": total,
        }

    def _training_summary(self, trainer: Any, fitted: _Fitted, selected: int) -> dict[str, Any]:
        """The card's training section: steps, selected step, resume point, speed."""
        steps_run = trainer.state.global_step - fitted.start_step
        seconds = fitted.train_seconds
        return {
            "steps": trainer.state.global_step,
            "epochs": trainer.state.epoch,
            "selected_step": selected,
            "resumed_from_step": fitted.start_step if fitted.resume is not None else None,
            "wall_time_s": round(seconds, 3),
            # approximate: the last batch of an epoch may be smaller than the batch size
            "examples_per_s": round(steps_run * self.global_batch / max(seconds, 1e-9), 2),
        }

    def _evaluate_final_step(self, trainer: Any) -> None:
        """Make sure the final model was evaluated on dev. Every rank runs this: evaluation is
        a collective step under DDP. The Trainer's log history (restored on resume) is the
        same on every rank; the JSONL log exists on rank 0 only."""
        if self.dev is None:
            return
        done = {r.get("step") for r in trainer.state.log_history if "eval_loss" in r}
        if trainer.state.global_step not in done:
            trainer.evaluate()

    def _select_on_dev(self, trainer: Any) -> tuple[dict[str, Any] | None, int]:
        """Restore the best dev weights; the dev figures of the selected step."""
        step = trainer.state.global_step
        if self.dev is None:
            return None, step
        evals = {r["step"]: r for r in read_log(self.folder / TRAIN_LOG) if "eval_loss" in r}
        best = _find_callback(trainer, "BestOnDev")
        selected = best.best_step if best.best_step is not None else step
        if selected != step:
            best.restore(trainer.model)
        row = evals[selected]
        final = {
            k.removeprefix("eval_"): row[k] for k in ("eval_loss", "eval_accuracy", "eval_f1_macro")
        }
        return {"step": selected, "split": self.ft.dev_split, "n": len(self.dev), **final}, selected

    def _interrupted(self, step: int) -> FinetuneInterrupted:
        ckpt = last_checkpoint(self.folder)
        kept = (
            f"checkpoint kept in {ckpt}"
            if ckpt is not None
            else f"no checkpoint saved yet (one is written every {self.ft.save_steps} steps)"
        )
        return FinetuneInterrupted(MSG_INTERRUPTED.format(step=step, kept=kept))


def _find_callback(trainer: Any, name: str) -> Any:
    """The live callback instance of class ``name``: a resume rebuilds the ExportableState
    callbacks (BestOnDev) from the checkpoint, so the object passed in may not be the one used."""
    for cb in trainer.callback_handler.callbacks:
        if type(cb).__name__ == name:
            return cb
    raise LookupError(name)
