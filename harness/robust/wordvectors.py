"""The faithful recipes' resources wired into TextAttack: the counter-fitted GloVe vectors as
TextAttack's ``WordEmbedding`` (what ``WordSwapEmbedding`` and ``WordEmbeddingDistance`` read
from ``counterfitted_GLOVE_embedding()``), and the Unicode homoglyph table that
``WordSwapHomoglyphSwap`` opens from a file the textattack wheel does not ship.

TextAttack is imported inside the functions, which ``textattack_adapter.substitutes`` calls
while a recipe is built.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from harness.artifacts import fetch
from harness.robust.recipes import COUNTERFITTED, HOMOGLYPHS

VECTORS_FILE = "vectors.npy"
WORDS_FILE = "words.txt"
HOMOGLYPHS_FILE = "intentional_homoglyphs.txt"
TEXTATTACK_HOMOGLYPHS = "intentional_homoglyphs.txt"  # the name TextAttack opens
NEIGHBOURS_KEPT = 64
_loaded: dict[str, tuple[list[str], Any]] = {}


def counterfitted_vectors() -> tuple[list[str], Any]:
    """(words, unit float32 matrix) of the verified counter-fitted artifact (loaded once)."""
    folder = fetch(COUNTERFITTED)
    key = str(folder)
    if key not in _loaded:
        words = (folder / WORDS_FILE).read_text(encoding="utf-8").split()
        matrix = np.load(folder / VECTORS_FILE, allow_pickle=False)
        if len(words) != len(matrix):
            raise ValueError(f"{folder}: {len(words)} words but {len(matrix)} vectors")
        _loaded[key] = (words, matrix)
    return _loaded[key]


def nearest(matrix: Any, index: int, topn: int) -> list[int]:
    """Indices of the ``topn`` nearest rows to row ``index`` by Euclidean distance (itself
    excluded; ties in index order, so the candidates are the same on every run)."""
    dist = np.linalg.norm(matrix - matrix[index], axis=1)
    order = np.argsort(dist, kind="stable")
    return [int(j) for j in order if j != index][:topn]


def counterfitted_embedding() -> Any:
    """TextAttack's ``WordEmbedding`` over the counter-fitted vectors."""
    from textattack.shared import WordEmbedding

    words, matrix = counterfitted_vectors()

    class CounterFittedEmbedding(WordEmbedding):  # type: ignore[misc]
        """Nearest neighbours by Euclidean distance on unit vectors (the order of TextAttack's
        precomputed nn matrix), computed on first use and cached."""

        def nearest_neighbours(self, index: Any, topn: int) -> list[int]:
            if isinstance(index, str):
                index = self._word2index[index]
            cached = self._nn_cache.get(index)
            if cached is None or len(cached) < topn:
                cached = nearest(self.embedding_matrix, index, max(topn, NEIGHBOURS_KEPT))
                self._nn_cache[index] = cached
            return list(cached[:topn])

    return CounterFittedEmbedding(
        embedding_matrix=matrix,
        word2index={w: i for i, w in enumerate(words)},
        index2word=dict(enumerate(words)),
    )


def homoglyph_table() -> Path:
    return fetch(HOMOGLYPHS) / HOMOGLYPHS_FILE


@contextlib.contextmanager
def homoglyph_file_redirect() -> Iterator[None]:
    """While a recipe builds, ``WordSwapHomoglyphSwap.__init__`` opens our verified table
    instead of ``textattack/shared/intentional_homoglyphs.txt`` (absent from the wheel). Only
    that module's ``open`` is redirected, and only for that file name."""
    from textattack.transformations.word_swaps import word_swap_homoglyph_swap as module

    table = homoglyph_table()

    def redirected(file: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(str(file)).name == TEXTATTACK_HOMOGLYPHS:
            file = table
        return builtins.open(file, *args, **kwargs)

    had = "open" in vars(module)
    previous = vars(module).get("open")
    module.open = redirected  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if had:
            module.open = previous  # type: ignore[attr-defined]
        else:
            del module.open  # type: ignore[attr-defined]
