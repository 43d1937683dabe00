"""Fine-tuning callbacks (progress, JSONL log, best-on-dev with early stopping, Ctrl-C) and
the model card.

The callback classes subclass transformers' ``TrainerCallback``, so they are built inside
``make_callbacks`` to keep transformers out of module import.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

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
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line torn by a crash mid-write
            continue
    return rows


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


def make_callbacks(
    *,
    folder: Path,
    metric: str,
    patience: int | None,
    logger: logging.Logger,
    progress: bool,
) -> dict[str, Any]:
    """The callbacks for one run, by role: log, progress, best, stop, epoch_eval."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import ExportableState

    class JsonlLog(TrainerCallback):
        """Every Trainer log entry (train loss, lr, dev metrics) as one JSON line, appended."""

        def __init__(self) -> None:
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
        """A progress bar with loss, step rate and ETA; dev metrics go to the log."""

        def __init__(self) -> None:
            self.bar: Any = None
            self.task: Any = None
            self.start_step = 0
            self.t0 = 0.0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if not progress or not state.is_world_process_zero:
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
            logger.info(
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
        continues with the best value and patience count it had at that checkpoint. Weights of
        each new best are written to best/step-N.safetensors (never pickle). With several
        processes every rank keeps the same state (dev metrics are gathered over all ranks) and
        rank 0, the one that writes the final checkpoint, writes and restores the weights.
        """

        def __init__(
            self, metric: str = metric, patience: int | None = patience, folder: str = str(folder)
        ) -> None:
            self.metric, self.patience, self.folder = metric, patience, Path(folder)
            self.best_value: float | None = None
            self.best_step: int | None = None
            self.bad_evals = 0

        def state(self) -> dict[str, Any]:
            return {
                "args": {
                    "metric": self.metric,
                    "patience": self.patience,
                    "folder": str(self.folder),
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
                from safetensors.torch import save_file

                self.best_value, self.best_step, self.bad_evals = float(value), state.global_step, 0
                if not state.is_world_process_zero:
                    return
                tensors = {
                    n: p.detach().cpu().contiguous()
                    for n, p in model.named_parameters()
                    if p.requires_grad
                }
                (self.folder / BEST_DIR).mkdir(exist_ok=True)
                save_file(tensors, str(self.best_file()))
                return
            self.bad_evals += 1
            if self.patience is not None and self.bad_evals >= self.patience:
                logger.info(
                    "early stopping: dev %s did not improve for %d evaluation(s)",
                    self.metric,
                    self.bad_evals,
                )
                control.should_training_stop = True

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

    return {
        "log": JsonlLog(),
        "progress": RichProgress(),
        "best": BestOnDev(),
        "stop": GracefulStop(),
        "epoch_eval": EpochEvalAtStepEnd(),
    }


def find_callback(trainer: Any, name: str) -> Any:
    """The live callback instance of class ``name`` (a resume may have replaced the original)."""
    for cb in trainer.callback_handler.callbacks:
        if type(cb).__name__ == name:
            return cb
    raise LookupError(name)


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
    if method == "lora":
        import peft

        out["peft"] = peft.__version__
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
