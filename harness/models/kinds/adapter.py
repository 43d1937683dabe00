"""The shared body of the torch kinds other than the sequence classifier: token rows in,
class scores out, with the same batching as ``HFClassifier`` (length-bucketed, each batch
padded to its longest row, ``torch.inference_mode``).

A kind subclasses ``ScoringAdapter`` and gives ``tokenize`` (texts -> the token rows the kind
scores) and ``scores`` (a padded batch -> class logits, shape (batch, n_labels)). Probabilities
are the softmax of those logits, so a kind states its scores as log-probabilities or scaled
similarities and everything else follows. The adapter also satisfies the latency suite's
``TimedModel`` (tokenize / collate / logits / model / tokenizer), so latency is measured on
every kind; it declares ``gradient_unavailable`` (the gradient suites' "not applicable").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.errors import ModelError
from harness.models.base import Encoded, FloatArray
from harness.records import ModelInfo


class ScoringAdapter(ABC):
    """A ``ModelAdapter`` over a torch module that scores token rows (see module docstring)."""

    kind_name = "scoring"
    gradient_unavailable: str | None = "this model kind gives no classifier forward over input embeddings"

    def __init__(
        self, *, module: Any, tokenizer: Any, label_names: tuple[str, ...], device: str,
        max_length: int, batch_size: int, info: ModelInfo,
    ) -> None:  # fmt: skip
        self._module = module
        self._tokenizer = tokenizer
        self._label_names = label_names
        self._device = device
        self._max_length = max_length
        self.batch_size = batch_size
        self._info = info
        self.n_truncated = 0

    # ------------------------------------------------------------ protocol
    @property
    def label_names(self) -> tuple[str, ...]:
        return self._label_names

    @property
    def device(self) -> str:
        return self._device

    @property
    def model(self) -> Any:
        """The torch module that does the work (parameter counts and FLOPs read it)."""
        return self._module

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @property
    def max_length(self) -> int:
        return self._max_length

    def info(self) -> ModelInfo:
        return self._info

    # ------------------------------------------------------------ what a kind gives
    def tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        """Token rows (special tokens included) truncated to max_length, and which were cut."""
        return plain_rows(self._tokenizer, texts, self._max_length)

    @abstractmethod
    def scores(self, encoded: Encoded) -> Any:
        """Class logits of a padded batch, a torch tensor (batch, n_labels)."""

    # ------------------------------------------------------------ shared
    def collate(self, rows: Sequence[Sequence[int]], truncated: Sequence[bool] | None = None) -> Encoded:
        """Pad token-id rows to the longest of them (mask 1 on real tokens)."""
        return pad_rows(self._tokenizer, rows, truncated)

    def logits(self, encoded: Encoded) -> Any:
        return self.scores(encoded).float()

    def predict_proba(self, texts: Sequence[str]) -> FloatArray:
        """Softmax of the kind's scores, batched by length (one batch at a time)."""
        import torch

        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self._label_names)), dtype=np.float64)
        rows, truncated = self.tokenize(texts)
        self.n_truncated = int(sum(truncated))
        order = sorted(range(len(rows)), key=lambda i: (len(rows[i]), i))
        out = np.empty((len(rows), len(self._label_names)), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                logits = self.scores(self.collate([rows[i] for i in chunk])).double()
                out[chunk] = torch.softmax(logits, dim=-1).cpu().numpy()
        return out


def pad_rows(tokenizer: Any, rows: Sequence[Sequence[int]], truncated: Sequence[bool] | None = None) -> Encoded:
    """Token-id rows padded to the longest (the tokenizer's pad id, else 0; mask 1 on tokens)."""
    import torch

    longest = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    ids = torch.full((len(rows), longest), 0 if pad is None else pad, dtype=torch.long)
    mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(list(row), dtype=torch.long)
        mask[i, : len(row)] = 1
    return Encoded(
        input_ids=ids, attention_mask=mask, token_type_ids=None, lengths=[len(r) for r in rows],
        truncated=list(truncated) if truncated is not None else [False] * len(rows),
    )  # fmt: skip


def plain_rows(tokenizer: Any, texts: Sequence[str], max_length: int) -> tuple[list[list[int]], list[bool]]:
    """The tokenizer's own encoding of each text (special tokens included), truncated."""
    full = tokenizer(list(texts), truncation=False, return_attention_mask=False)["input_ids"]
    cut = tokenizer(list(texts), truncation=True, max_length=max_length, return_attention_mask=False)
    rows = [list(r) for r in cut["input_ids"]]
    return rows, [len(f) > len(r) for f, r in zip(full, rows, strict=True)]


def load_tokenizer(folder: Any, *, trust_remote_code: bool) -> Any:
    """The folder's tokenizer, never from the network."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(  # type: ignore[no-untyped-call]
            folder, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder}: cannot load the tokenizer ({exc})") from None


def quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]


def model_info(
    found: Any, *, kind: str, module: Any, label_names: Sequence[str], max_length: int,
    details: dict[str, Any], training: Any = None,
) -> ModelInfo:  # fmt: skip
    """The record's identity of a kind's model: digests of the folder's files, the kind and
    what it resolved (``details``: prompts, verbalizer ids, descriptions, temperature ...)."""
    from harness.models.hf import model_digest
    from harness.models.kinds.base import NO_TRAINING

    digest, files, tok_digest = model_digest(found.folder)
    # A fine-tune's name already says its method; a pretrained model used as another kind says
    # the kind, so "minilm-l6 (zero-shot-embedding)" and the classifier are told apart on a board.
    name = found.name if found.source == "finetune" or kind == "hf-classifier" else f"{found.name} ({kind})"
    return ModelInfo(
        name=name, source=found.source, location=str(found.folder), digest=digest,
        files=files, tokenizer_digest=tok_digest,
        n_parameters=int(sum(p.numel() for p in module.parameters())),
        label_names=list(label_names), max_length=max_length, dtype="fp32",
        model_card=found.model_card, forward="full", kind=kind, kind_details=details,
        training=training if training is not None else NO_TRAINING,
    )  # fmt: skip

