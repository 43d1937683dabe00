"""The ``ModelAdapter`` protocol: texts in, class probabilities out.

Suites talk to models only through this protocol. Adapters that wrap a torch model also expose
``TorchModelAccess`` (model, tokenizer, encode) for suites that need gradients or timings
(explainability, latency, the TextAttack victim wrapper).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from harness.records import ModelInfo

FloatArray = npt.NDArray[np.float64]

_ONE_BATCH_AT_A_TIME: ContextVar[bool] = ContextVar("one_batch_at_a_time", default=False)


@contextmanager
def one_batch_at_a_time() -> Iterator[None]:
    """Inside the block, adapters run their batches one after another on all intra-op threads
    rather than side by side. Timings need this: a latency measured at ``threads: N`` must be the
    forward's own N-thread time, not a schedule's."""
    token = _ONE_BATCH_AT_A_TIME.set(True)
    try:
        yield
    finally:
        _ONE_BATCH_AT_A_TIME.reset(token)


def batches_side_by_side_allowed() -> bool:
    return not _ONE_BATCH_AT_A_TIME.get()


@runtime_checkable
class ModelAdapter(Protocol):
    """What every suite may assume about a model."""

    @property
    def label_names(self) -> tuple[str, ...]: ...

    @property
    def device(self) -> str: ...

    def predict_proba(self, texts: Sequence[str]) -> FloatArray:
        """Class probabilities, shape (len(texts), len(label_names)), float64, rows sum to 1."""
        ...

    def info(self) -> ModelInfo:
        """Identity and digests for the record."""
        ...


@dataclass(frozen=True)
class Encoded:
    """A tokenised batch padded to its longest item (never to the model maximum)."""

    input_ids: Any  # torch.LongTensor (batch, seq)
    attention_mask: Any  # torch.LongTensor (batch, seq)
    token_type_ids: Any | None
    lengths: list[int]  # real token counts, special tokens included
    truncated: list[bool]


@runtime_checkable
class TorchModelAccess(Protocol):
    """Extra access for suites that need the torch model itself."""

    @property
    def model(self) -> Any: ...  # transformers PreTrainedModel in eval mode

    @property
    def tokenizer(self) -> Any: ...

    @property
    def max_length(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> Encoded: ...

    def logits(self, encoded: Encoded) -> Any: ...  # torch.Tensor (batch, n_labels), float32
