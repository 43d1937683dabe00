"""Cost figures: parameters, size on disk, peak memory, FLOPs per example, a matmul peak.

FLOPs (forward, one example of T tokens) are estimated as

    2 · N · T  +  4 · L · T² · d

N is the number of parameters outside embedding tables (a lookup is no multiply-add), applied
once per token: 2 FLOPs per weight per token (Kaplan et al. 2020, "Scaling laws", table 1). The
second term is attention's two T×T products per layer (QKᵀ and attention·V, 2·T²·d each) for
L layers of width d. It slightly overcounts the pooler and the classification head, which run
on one token only; softmax, layer norms and activations are not counted. Padding tokens are
computed like any other, so throughput figures use the padded length.

The achieved GFLOP/s of a configuration is compared with a peak measured on the same machine,
in the same run, with the same threads and dtype: the best round of an n×n by n×n matmul.
"""

from __future__ import annotations

import contextlib
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.latency.scenarios import Bench, Entry, Job
from harness.records import ModelInfo

CLEAR_REFS = Path("/proc/self/clear_refs")
PROC_STATUS = Path("/proc/self/status")


def parameter_counts(torch_model: Any) -> tuple[int, int]:
    """(all parameters, parameters in embedding tables), shared tensors counted once."""
    import torch

    seen: set[int] = set()
    total = 0
    for p in torch_model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += int(p.numel())
    embedding = 0
    counted: set[int] = set()
    for module in torch_model.modules():
        if isinstance(module, torch.nn.Embedding) and id(module.weight) not in counted:
            counted.add(id(module.weight))
            embedding += int(module.weight.numel())
    return total, embedding


def size_on_disk(info: ModelInfo) -> int:
    """Bytes of the model's files (weights, config, tokenizer) as digested on load."""
    return int(sum(f.size for f in info.files))


def model_shape(torch_model: Any) -> tuple[int | None, int | None]:
    """(layers, hidden width) from the transformers config, when it says."""
    config = getattr(torch_model, "config", None)
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None)
    hidden = getattr(config, "hidden_size", None) or getattr(config, "d_model", None)
    return (int(layers) if layers else None, int(hidden) if hidden else None)


@dataclass(frozen=True)
class FlopsModel:
    """The numbers the FLOPs estimate needs."""

    non_embedding_params: int
    layers: int | None
    hidden: int | None
    # Set when the last encoder layer runs for the [CLS] position only (cls_forward): its
    # parameter count. Only its key/value projections then see every token.
    cls_only_last_layer_params: int | None = None

    def per_example(self, tokens: float) -> float:
        flops = 2.0 * self.non_embedding_params * tokens
        if self.layers and self.hidden:
            flops += 4.0 * self.layers * tokens * tokens * self.hidden
        if self.cls_only_last_layer_params and self.hidden:
            key_value = 2 * (self.hidden * self.hidden + self.hidden)
            flops -= 2.0 * (self.cls_only_last_layer_params - key_value) * (tokens - 1)
            flops -= 4.0 * (tokens * tokens - tokens) * self.hidden  # one query row, not T
        return flops

    @classmethod
    def of(cls, torch_model: Any) -> FlopsModel:
        from harness.models.cls_forward import shortcut_enabled

        total, embedding = parameter_counts(torch_model)
        layers, hidden = model_shape(torch_model)
        last = None
        if shortcut_enabled(torch_model):
            last = sum(p.numel() for p in torch_model.bert.encoder.layer[-1].parameters())
        return cls(
            non_embedding_params=total - embedding,
            layers=layers,
            hidden=hidden,
            cls_only_last_layer_params=last,
        )


class PeakMemory:
    """Peak memory over a span: resident set on CPU, allocated tensor memory on CUDA.

    On Linux the kernel's high-water mark (VmHWM) is reset through /proc/self/clear_refs at
    ``start`` so the peak is the span's, not the process lifetime's; where that is impossible the
    lifetime peak (getrusage) is reported and ``method`` says so.
    """

    def __init__(self, device: str) -> None:
        self.device = device
        self.method = ""

    def start(self) -> PeakMemory:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats()
            self.method = "torch.cuda.max_memory_allocated since the suite started"
            return self
        try:
            CLEAR_REFS.write_text("5")
            self.method = "peak RSS (VmHWM) since the suite started"
        except OSError:
            self.method = "peak RSS of the process lifetime (getrusage ru_maxrss)"
        return self

    def peak_bytes(self) -> int | None:
        if self.device.startswith("cuda"):
            import torch

            return int(torch.cuda.max_memory_allocated())
        if "VmHWM" in self.method:
            with contextlib.suppress(OSError, ValueError):
                for line in PROC_STATUS.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(rss) if sys.platform == "darwin" else int(rss) * 1024  # macOS: bytes; Linux: KiB


def matmul_dtype(model: Any) -> str:
    """The dtype the model computes in: its autocast precision (CPU or CUDA), else its weights'."""
    precision = getattr(model, "precision", None)
    if precision in ("bf16", "fp16"):
        return "bfloat16" if precision == "bf16" else "float16"
    param = next(iter(model.model.parameters()), None)
    return str(param.dtype).removeprefix("torch.") if param is not None else "float32"


def matmul_job(device: str, dtype: str, size: int, bench: Bench) -> Job:
    """The machine's matmul peak for this dtype, measured like any other job."""
    params = {"n": size, "dtype": dtype}

    def run() -> Entry:
        import torch

        gen = torch.Generator(device="cpu").manual_seed(0)
        a = torch.randn(size, size, generator=gen).to(device=device, dtype=getattr(torch, dtype))
        b = torch.randn(size, size, generator=gen).to(device=device, dtype=getattr(torch, dtype))
        extra = {"flops": 2.0 * size**3}
        return bench.time(lambda: torch.matmul(a, b), group="matmul", params=params, extra=extra)

    return Job("cost/matmul", "matmul", params, run)


def peak_gflops(entry: Entry) -> float:
    """Best-round GFLOP/s of a matmul entry (a peak, so the fastest round, not the median)."""
    return float(entry["extra_info"]["flops"]) / float(entry["stats"]["min"]) / 1e9
