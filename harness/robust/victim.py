"""The attack victim: our ``ModelAdapter`` behind the interface TextAttack's goal functions call.

TextAttack's stock ``HuggingFaceModelWrapper`` pads every query batch to the tokenizer's
``model_max_length`` (512 for MiniLM) and remembers nothing between examples. This wrapper hands
whole query lists to ``adapter.predict_proba`` (length-bucketed, padded to the longest item of
each batch), memoises answers by text (the original text and many candidates recur across
recipes and search steps), and enforces a per-example time budget: when the deadline has
passed, the next query raises ``AttackTimeout`` so a slow example ends instead of hanging.

It is duck-typed to TextAttack's ``ModelWrapper`` (``model`` attribute, ``__call__``) so that
this module need not import TextAttack.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.models.base import FloatArray, ModelAdapter


class AttackTimeout(Exception):
    """The example's time budget ran out during the search."""


class VictimWrapper:
    """Batching, caching, deadline-aware victim over a ``ModelAdapter``."""

    def __init__(
        self, adapter: ModelAdapter, *, cache: bool = True, max_cache: int = 200_000
    ) -> None:
        self.adapter = adapter
        # TextAttack reads ``model_wrapper.model`` to check goal-function compatibility.
        self.model: Any = getattr(adapter, "model", adapter)
        self.use_cache = cache
        self.max_cache = max_cache
        self._cache: dict[str, FloatArray] = {}
        self.deadline: float | None = None
        self.model_calls = 0  # texts actually sent to the model (cache misses)
        self.queries = 0  # texts asked for, hits included

    def __call__(self, text_list: Sequence[str]) -> FloatArray:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise AttackTimeout()
        texts = [str(t) for t in text_list]
        self.queries += len(texts)
        if not self.use_cache:
            self.model_calls += len(texts)
            return self.adapter.predict_proba(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            self.model_calls += len(missing)
            probs = self.adapter.predict_proba(missing)
            if len(self._cache) + len(missing) > self.max_cache:
                self._cache.clear()  # bounded memory; a cache miss only costs time
            for text, row in zip(missing, probs, strict=True):
                self._cache[text] = row
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 0))

    def warm(self, texts: Sequence[str]) -> FloatArray:
        """Predict many texts in one bucketed pass (e.g. every clean example) and cache them."""
        return self(texts)

    def set_deadline(self, seconds: float | None) -> None:
        self.deadline = None if seconds is None else time.monotonic() + seconds
