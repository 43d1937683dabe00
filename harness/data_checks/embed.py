"""Sentence embeddings for the shift test, embedding clusters and embedding near-duplicates.

With a torch model (``TorchModelAccess``) the embedding is the mean of the encoder's last hidden
states over the real tokens (the classifier's own representation, as the model sees the text),
L2-normalised. Other models get a model-free fallback: TF-IDF over character 3-5-grams of the
texts embedded together, reduced by truncated SVD, also L2-normalised. Neither reads labels or
predictions, so tests built on them (a permutation test, clusters searched on one half of the
split) stay valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.models.base import TorchModelAccess

FloatArray = npt.NDArray[np.float64]
FALLBACK_DIMENSIONS = 64


def _normalise(x: FloatArray) -> FloatArray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.where(norms > 0, norms, 1.0), dtype=np.float64)


def encoder_embeddings(model: Any, texts: Sequence[str], batch_size: int = 64) -> FloatArray:
    """Mean-pooled last hidden states of ``model``'s encoder (batches sorted by length)."""
    import torch

    access: Any = model
    encoder = access.model.base_model
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), 0))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            enc = access.encode([texts[i] for i in chunk])
            device = next(encoder.parameters()).device
            kwargs = {"input_ids": enc.input_ids.to(device), "attention_mask": enc.attention_mask.to(device)}
            if enc.token_type_ids is not None:
                kwargs["token_type_ids"] = enc.token_type_ids.to(device)
            hidden = encoder(**kwargs).last_hidden_state.float()
            mask = kwargs["attention_mask"].unsqueeze(-1).float()
            pooled = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)).cpu().numpy().astype(np.float64)
            if out.shape[1] == 0:
                out = np.zeros((len(texts), pooled.shape[1]))
            out[chunk] = pooled
    return _normalise(out)


def fallback_embeddings(texts: Sequence[str], seed: int = 0) -> FloatArray:
    """TF-IDF of character 3-5-grams, truncated SVD, fitted on ``texts`` together."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    matrix = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=1, sublinear_tf=True).fit_transform(list(texts))
    dims = min(FALLBACK_DIMENSIONS, matrix.shape[1] - 1, matrix.shape[0] - 1)
    if dims < 1:
        return _normalise(np.asarray(matrix.toarray(), dtype=np.float64))
    reduced = TruncatedSVD(n_components=dims, random_state=seed).fit_transform(matrix)
    return _normalise(np.asarray(reduced, dtype=np.float64))


def embeddings(model: Any, texts: Sequence[str], *, batch_size: int = 64, seed: int = 0) -> tuple[FloatArray, str]:
    """Embeddings of ``texts`` (rows L2-normalised) and how they were made."""
    if not texts:
        return np.zeros((0, 1)), "none"
    if isinstance(model, TorchModelAccess) and hasattr(getattr(model, "model", None), "base_model"):
        return encoder_embeddings(model, texts, batch_size), "mean-pooled last hidden state of the model's encoder"
    return fallback_embeddings(texts, seed), "TF-IDF of character 3-5-grams, truncated SVD (the model exposes no encoder)"
