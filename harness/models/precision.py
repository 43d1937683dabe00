"""Which numeric precision a forward or a fine-tune runs in, and why.

``precision: auto | fp32 | bf16 | fp16 | int8`` (``model.precision`` for evaluation,
``finetune.precision`` for training) is resolved here once, against what the hardware does
natively, and the answer is recorded with the capability it was based on:

* evaluation: ``auto`` is fp32, the reference; reduced precision only on request (then the
  agreement probe, ``harness.models.agreement``, says how far it is from fp32);
* fine-tuning: ``auto`` is bf16 autocast where the device has native bf16 (a CUDA GPU whose
  torch reports ``is_bf16_supported()``; a CPU with AVX512-BF16 or AMX-BF16, or an Arm CPU with
  the BF16 extension), fp32 elsewhere. fp16 trains only on CUDA, with a loss scaler (the
  Trainer's GradScaler); int8 is an inference format only.

Native bf16 is decided from the CPU's feature flags (``/proc/cpuinfo``), not from
``torch.ops.mkldnn._is_mkldnn_bf16_supported()``: oneDNN reports True on any AVX512 core, where
bf16 is emulated and slower than fp32. ``HARNESS_NATIVE_BF16=0`` (or ``1``) overrides the
detection, e.g. to reproduce a run of a machine without bf16; the record says it was forced.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from harness.errors import ConfigError

Precision = Literal["auto", "fp32", "bf16", "fp16", "int8"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16", "int8")
FORCE_ENV = "HARNESS_NATIVE_BF16"
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86; Arm lists "bf16" in its Features line
CPU_INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")

MSG_AUTO_EVAL = "auto: evaluation runs in fp32, the reference (ask for bf16 or int8 to trade it for speed)"
MSG_AUTO_NATIVE = "auto: bf16 autocast, the {device} has native bf16 ({how})"
MSG_AUTO_NO_BF16 = "auto: fp32, the {device} has no native bf16 ({how}); bf16 would be emulated and slower"
MSG_REQUESTED = "{precision}: as requested"
MSG_EMULATED = (
    "{precision}: as requested, but the {device} has no native bf16 ({how}); it is emulated and "
    "may be slower than fp32"
)
MSG_INT8_CUDA = (
    "{key}: int8 (dynamic quantization of nn.Linear) runs on CPU only; use bf16 or fp16 on CUDA"
)
MSG_INT8_TRAIN = "finetune.precision: int8 is an inference format; train in auto, fp32, bf16 or fp16"
MSG_FP16_CPU_TRAIN = (
    "finetune.precision: fp16 training needs a CUDA GPU (a loss scaler on float16); use bf16 or "
    "auto on CPU"
)


@dataclass(frozen=True)
class Capability:
    """What the device does natively, and how that was found out (copied into the record)."""

    device: str
    native_bf16: bool
    native_int8: bool
    how: str
    torch_cpu_capability: str | None = None
    gpu: str | None = None


@dataclass(frozen=True)
class Resolved:
    """A resolved precision: what was asked, what runs, the reason in words, the capability."""

    requested: str
    precision: str
    reason: str
    capability: Capability

    def as_record(self) -> dict[str, Any]:
        """Plain data for a record or model card."""
        return {
            "requested": self.requested,
            "precision": self.precision,
            "reason": self.reason,
            "capability": asdict(self.capability),
        }


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key = line.split(":", 1)[0].strip().lower()
        if key in ("flags", "features"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def _forced() -> bool | None:
    value = os.environ.get(FORCE_ENV, "").strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    return None


def detect(device: str) -> Capability:
    """The native bf16 / int8 support of ``device`` ('cpu' or 'cuda')."""
    import torch

    forced = _forced()
    if device == "cuda":
        gpu = torch.cuda.get_device_name()
        native = bool(torch.cuda.is_bf16_supported()) if forced is None else forced
        how = "torch.cuda.is_bf16_supported()" if forced is None else f"forced by {FORCE_ENV}"
        return Capability(device="cuda", native_bf16=native, native_int8=False, how=how, gpu=gpu)
    flags = cpu_flags()
    arm = platform.machine().lower() in ("aarch64", "arm64")
    found = [f for f in CPU_BF16_FLAGS if f in flags] + (["bf16"] if arm and "bf16" in flags else [])
    if forced is not None:
        native, how = forced, f"forced by {FORCE_ENV}={os.environ[FORCE_ENV]}"
    elif found:
        native, how = True, "cpu flags: " + ", ".join(found)
    else:
        native, how = False, "no avx512_bf16 / amx_bf16 cpu flag" if flags else "cpu flags unknown"
    return Capability(
        device="cpu", native_bf16=native, native_int8=any(f in flags for f in CPU_INT8_FLAGS),
        how=how, torch_cpu_capability=str(torch.backends.cpu.get_cpu_capability()),
    )  # fmt: skip


def resolve_eval(requested: str, device: str, capability: Capability | None = None) -> Resolved:
    """The precision evaluation forwards run in: fp32 unless reduced precision is asked for."""
    cap = capability or detect(device)
    if requested == "int8" and device == "cuda":
        raise ConfigError(MSG_INT8_CUDA.format(key="model.precision"))
    if requested == "auto":
        return Resolved("auto", "fp32", MSG_AUTO_EVAL, cap)
    return Resolved(requested, requested, _requested_reason(requested, cap), cap)


def resolve_train(requested: str, device: str, capability: Capability | None = None) -> Resolved:
    """The precision a fine-tune runs in: ``auto`` is bf16 autocast where bf16 is native."""
    cap = capability or detect(device)
    if requested == "int8":
        raise ConfigError(MSG_INT8_TRAIN)
    if requested == "fp16" and device != "cuda":
        raise ConfigError(MSG_FP16_CPU_TRAIN)
    if requested == "auto":
        word = "GPU" if device == "cuda" else "CPU"
        if cap.native_bf16:
            return Resolved("auto", "bf16", MSG_AUTO_NATIVE.format(device=word, how=cap.how), cap)
        return Resolved("auto", "fp32", MSG_AUTO_NO_BF16.format(device=word, how=cap.how), cap)
    return Resolved(requested, requested, _requested_reason(requested, cap), cap)


def _requested_reason(precision: str, cap: Capability) -> str:
    if precision == "bf16" and not cap.native_bf16:
        word = "GPU" if cap.device == "cuda" else "CPU"
        return MSG_EMULATED.format(precision=precision, device=word, how=cap.how)
    return MSG_REQUESTED.format(precision=precision)


@contextlib.contextmanager
def autocast(device: str, precision: str) -> Iterator[None]:
    """Autocast for bf16 / fp16 forwards on ``device``; a no-op for fp32 and int8."""
    import torch

    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        yield
        return
    with torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=dtypes[precision]):
        yield


def quantize_int8(model: Any) -> Any:
    """A dynamically quantized (int8 nn.Linear, float activations quantized on the fly) copy."""
    import copy
    import importlib
    import warnings

    import torch

    quantize_dynamic: Any = importlib.import_module("torch.ao.quantization").quantize_dynamic
    with warnings.catch_warnings():
        # torch >= 2.10 deprecates the eager quantization API in favour of torchao; it still works.
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization.*", category=DeprecationWarning)
        quantized = quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
    return quantized.eval()
