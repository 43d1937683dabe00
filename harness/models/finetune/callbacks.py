"""The fine-tuning callbacks: JSONL log, progress bar, best-on-dev with early stopping,
per-epoch evaluation at the step's end, graceful Ctrl-C.

They subclass transformers' ``TrainerCallback``, so importing this module imports
transformers; ``training`` imports ``make_callbacks`` from here when a fine-tune starts, which
keeps transformers out of the import of everything else (``card``, ``cache``, ``job``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from harness.models.finetune.card import BEST_DIR, TRAIN_LOG, read_log

DEFAULT_LOGGER = "harness.finetune"


def make_callbacks(
    *,
    folder: Path,
    metric: str,
    patience: int | None,
    logger: logging.Logger,
    progress: bool,
) -> dict[str, Any]:
    """The callbacks for one run, by role: log, progress, best, stop, epoch_eval."""
    return {
        "log": JsonlLog(folder),
        "progress": RichProgress(progress=progress, logger=logger),
        "best": BestOnDev(metric, patience, str(folder), logger=logger.name),
        "stop": GracefulStop(),
        "epoch_eval": EpochEvalAtStepEnd(),
    }


class JsonlLog(TrainerCallback):
    """Every Trainer log entry (train loss, lr, dev metrics) as one JSON line, appended."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / TRAIN_LOG
        self.t0 = time.perf_counter()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if not state.is_world_process_zero:  # one log per fine-tune, not one per process
            return
        # Resuming: drop entries logged after the checkpoint; they will be logged again.
        kept = [
            r
            for r in read_log(self.path)
            if r.get("step", 0) <= state.global_step and "train_runtime" not in r
        ]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if not state.is_world_process_zero:
            return
        row = {"step": state.global_step, "epoch": state.epoch, **(logs or {})}
        row["time_s"] = round(time.perf_counter() - self.t0, 3)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


class RichProgress(TrainerCallback):
    """A progress bar with loss, step rate and ETA (when ``progress``); dev metrics go to
    ``logger``."""

    def __init__(self, *, progress: bool, logger: logging.Logger) -> None:
        self.progress, self.logger = progress, logger
        self.bar: Any = None
        self.task: Any = None
        self.start_step = 0
        self.t0 = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if not self.progress or not state.is_world_process_zero:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("fine-tune"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} step/s  loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self.bar.start()
        self.start_step, self.t0 = state.global_step, time.perf_counter()
        self.task = self.bar.add_task(
            "fine-tune", total=state.max_steps, completed=state.global_step, rate="-", loss="-"
        )

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.bar is None:
            return
        done = state.global_step - self.start_step
        rate = done / max(time.perf_counter() - self.t0, 1e-9)
        self.bar.update(self.task, completed=state.global_step, rate=f"{rate:.2f}")

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if self.bar is not None and logs and "loss" in logs:
            self.bar.update(self.task, loss=f"{logs['loss']:.4f}")

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: Any = None, **kw: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        m = metrics or {}
        self.logger.info(
            "dev @ step %d: loss %.4f accuracy %.4f f1_macro %.4f",
            state.global_step,
            m.get("eval_loss", float("nan")),
            m.get("eval_accuracy", float("nan")),
            m.get("eval_f1_macro", float("nan")),
        )

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class BestOnDev(TrainerCallback, ExportableState):
    """Keeps the trainable weights of the best dev evaluation and stops early.

    Its state is stored in each Trainer checkpoint (ExportableState), so a resumed run
    continues with the best value and patience count it had at that checkpoint: the Trainer
    rebuilds it as ``BestOnDev(**state()["args"])``, which is why every constructor argument is
    plain data (the logger by its name). Weights of each new best are written to
    best/step-N.safetensors (never pickle). With several processes every rank keeps the same
    state (dev metrics are gathered over all ranks) and rank 0, the one that writes the final
    checkpoint, writes and restores the weights.
    """

    def __init__(
        self, metric: str, patience: int | None, folder: str, logger: str = DEFAULT_LOGGER
    ) -> None:
        self.metric, self.patience, self.folder = metric, patience, Path(folder)
        self.logger = logging.getLogger(logger)
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.bad_evals = 0

    def state(self) -> dict[str, Any]:
        return {
            "args": {
                "metric": self.metric,
                "patience": self.patience,
                "folder": str(self.folder),
                "logger": self.logger.name,
            },
            "attributes": {
                "best_value": self.best_value,
                "best_step": self.best_step,
                "bad_evals": self.bad_evals,
            },
        }

    def _better(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value < self.best_value if self.metric == "loss" else value > self.best_value

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        metrics: Any = None,
        model: Any = None,
        **kw: Any,
    ) -> None:
        value = (metrics or {}).get(f"eval_{self.metric}")
        if value is None or model is None:
            return
        if self._better(float(value)):
            self.best_value, self.best_step, self.bad_evals = float(value), state.global_step, 0
            if state.is_world_process_zero:
                self._save(model)
            return
        self.bad_evals += 1
        if self.patience is not None and self.bad_evals >= self.patience:
            self.logger.info(
                "early stopping: dev %s did not improve for %d evaluation(s)",
                self.metric,
                self.bad_evals,
            )
            control.should_training_stop = True

    def _save(self, model: Any) -> None:
        """Write the trainable weights of the new best (rank 0 only)."""
        from safetensors.torch import save_file

        tensors = {
            n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad
        }
        (self.folder / BEST_DIR).mkdir(exist_ok=True)
        save_file(tensors, str(self.best_file()))

    def best_file(self) -> Path:
        return self.folder / BEST_DIR / f"step-{self.best_step}.safetensors"

    def restore(self, model: Any) -> None:
        """Load the best trainable weights back into ``model``."""
        import torch
        from safetensors.torch import load_file

        saved = load_file(str(self.best_file()))
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, tensor in saved.items():
                params[name].copy_(tensor.to(params[name].device))


class EpochEvalAtStepEnd(TrainerCallback):
    """Run the per-epoch dev evaluation at the end of the epoch's last step instead of after
    the epoch. Then evaluation precedes any checkpoint saved at that step, so the saved
    best-on-dev state includes it, and a run resumed from that checkpoint does not lose it.
    """

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if args.eval_strategy == "epoch" and state.epoch and float(state.epoch).is_integer():
            control.should_evaluate = True

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if args.eval_strategy == "epoch":
            control.should_evaluate = False


class GracefulStop(TrainerCallback):
    """After Ctrl-C: finish the current step, save a checkpoint, stop."""

    def __init__(self) -> None:
        self.requested = False

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.requested:
            control.should_save = True
            control.should_training_stop = True
