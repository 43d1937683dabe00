"""Counter-fitting (Mrkšić et al. 2016): the vectorised port against a line-by-line Python 3
transcription of the published counterfitting.py, and the catalogued counter-fitted GloVe
artifact against raw GloVe on a fixed word list."""

from __future__ import annotations

import json
import math
from copy import deepcopy
from typing import Any

import numpy as np
import pytest

from harness.catalog import counterfit as cf

# ---------------------------------------------------------------- the published algorithm
# Transcribed from github.com/nmrksic/counter-fitting/counterfitting.py (Python 2, dictionaries
# of float32 vectors); only print statements and the config object are dropped, and float64 is
# used so the comparison is not float32 noise.


def _ref_normalise(vectors: dict[Any, Any]) -> dict[Any, Any]:
    for word in vectors:
        vectors[word] /= math.sqrt((vectors[word] ** 2).sum() + 1e-6)
    return vectors


def _ref_distance(u: Any, v: Any) -> float:
    return float(1 - np.dot(u, v))


def _ref_gradient(u: Any, v: Any) -> Any:
    return u * np.dot(u, v) - v


def _ref_vsp(vectors: dict[Any, Any], rho: float) -> dict[tuple[Any, Any], float]:
    words = list(vectors)
    out = {}
    for a in words:
        for b in words:
            d = 1 - np.dot(vectors[a], vectors[b])
            if a != b and np.dot(vectors[a], vectors[b]) >= 1 - rho:
                out[(a, b)] = d
                out[(b, a)] = d
    return out


def _ref_step(vectors: Any, synonyms: Any, antonyms: Any, vsp: Any, p: cf.CounterFitParams) -> Any:
    new = deepcopy(vectors)
    updates: dict[Any, Any] = {}
    count: dict[Any, int] = {}

    def add(word: Any, g: Any) -> None:
        updates[word] = updates[word] + g if word in updates else g
        count[word] = count.get(word, 0) + 1

    for i, j in antonyms:
        if _ref_distance(new[i], new[j]) < p.delta:
            add(i, _ref_gradient(new[i], new[j]) * p.k1)
    for i, j in synonyms:
        if _ref_distance(new[i], new[j]) > p.gamma:
            add(j, -_ref_gradient(new[j], new[i]) * p.k2)
    for i, j in vsp:
        if vsp[(i, j)] <= _ref_distance(new[i], new[j]):
            add(i, -_ref_gradient(new[i], new[j]) * p.k3)
    for word in updates:
        new[word] = new[word] + updates[word] / count[word]
    return _ref_normalise(new)


def reference_counter_fit(
    matrix: Any,
    synonyms: set[tuple[int, int]],
    antonyms: set[tuple[int, int]],
    p: cf.CounterFitParams,
) -> Any:
    vectors = _ref_normalise({i: np.array(row, dtype=np.float64) for i, row in enumerate(matrix)})
    vsp = _ref_vsp(vectors, p.rho) if p.k3 > 0 else {}
    synonyms = set(synonyms)
    for pair in antonyms:
        synonyms.discard(pair)
        vsp.pop(pair, None)
    for _ in range(p.iterations):
        vectors = _ref_step(vectors, synonyms, antonyms, vsp, p)
    return np.stack([vectors[i] for i in range(len(matrix))])


def _clustered(n: int, dim: int, seed: int) -> Any:
    """Vectors in a few tight clusters, so VSP neighbourhoods (cosine >= 0.8) exist."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, dim))
    return centres[rng.integers(0, 4, n)] + 0.35 * rng.normal(size=(n, dim))


def _both(pairs: list[tuple[int, int]]) -> set[tuple[int, int]]:
    return {*pairs, *((j, i) for i, j in pairs)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_published_procedure(seed: int) -> None:
    matrix = _clustered(30, 6, seed)
    rng = np.random.default_rng(100 + seed)
    raw_syn = [tuple(int(x) for x in rng.choice(30, 2, replace=False)) for _ in range(25)]
    raw_ant = [tuple(int(x) for x in rng.choice(30, 2, replace=False)) for _ in range(10)]
    raw_ant.append(raw_syn[0])  # a pair that is both: dropped from the synonyms, as published
    syn, ant = _both(raw_syn), _both(raw_ant)  # type: ignore[arg-type]
    params = cf.CounterFitParams(iterations=8)
    ours = cf.counter_fit(matrix, cf.as_pairs(syn), cf.as_pairs(ant), params)
    theirs = reference_counter_fit(matrix, syn, ant, params)
    np.testing.assert_allclose(ours.vectors, theirs, atol=1e-10)
    assert ours.n_synonym_pairs == len(syn - ant)
    assert ours.n_antonym_pairs == len(ant)
    expected_vsp = {k for k in _ref_vsp(_ref_normalise(dict(enumerate(matrix.copy()))), 0.2)} - ant
    assert ours.n_vsp_pairs == len(expected_vsp) > 0


def test_constraints_move_pairs_the_right_way() -> None:
    matrix = _clustered(20, 5, 3)
    syn, ant = _both([(0, 1), (2, 3)]), _both([(4, 5), (6, 7)])
    out = cf.counter_fit(matrix, cf.as_pairs(syn), cf.as_pairs(ant)).vectors
    start = cf.normalise(matrix)
    for i, j in [(0, 1), (2, 3)]:
        assert out[i] @ out[j] > start[i] @ start[j]
    for i, j in [(4, 5), (6, 7)]:
        assert out[i] @ out[j] < start[i] @ start[j]


def test_edges_no_constraints_one_word_and_no_vsp() -> None:
    empty = np.zeros((0, 2), dtype=np.int64)
    one = cf.counter_fit(np.array([[3.0, 4.0]]), empty, empty)
    # untouched rows are only renormalised, once per step (``v / sqrt(|v|^2 + 1e-6)``)
    np.testing.assert_allclose(
        one.vectors, reference_counter_fit([[3.0, 4.0]], set(), set(), cf.CounterFitParams())
    )
    np.testing.assert_allclose(one.vectors, [[0.6, 0.8]], atol=1e-5)
    assert (one.n_synonym_pairs, one.n_antonym_pairs, one.n_vsp_pairs) == (0, 0, 0)
    far = np.eye(4) * 5  # far-apart words, no constraint: directions unchanged
    np.testing.assert_allclose(cf.counter_fit(far, empty, empty).vectors, np.eye(4), atol=1e-5)
    # pair helpers: self-pairs and duplicates dropped, both directions added
    assert cf.as_pairs([(1, 1), (2, 1), (2, 1)]).tolist() == [[2, 1]]
    assert cf.symmetric(cf.as_pairs([(0, 3)])).tolist() == [[0, 3], [3, 0]]
    assert cf.pairs_from_groups([[5]]).shape == (0, 2)


# ---------------------------------------------------------------- the catalogued artifact
SYNONYMS = [
    ("big", "large"), ("small", "little"), ("happy", "glad"), ("fast", "quick"),
    ("begin", "start"), ("buy", "purchase"), ("smart", "intelligent"), ("sick", "ill"),
    ("movie", "film"), ("car", "automobile"), ("hard", "difficult"), ("rich", "wealthy"),
]  # fmt: skip
ANTONYMS = [
    ("good", "bad"), ("hot", "cold"), ("up", "down"), ("win", "lose"), ("love", "hate"),
    ("rich", "poor"), ("old", "young"), ("fast", "slow"), ("increase", "decrease"),
    ("true", "false"), ("buy", "sell"), ("dark", "light"), ("strong", "weak"),
    ("happy", "unhappy"),
]  # fmt: skip


def _mean_cosine(words: list[str], matrix: Any, pairs: list[tuple[str, str]]) -> float:
    index = {w: i for i, w in enumerate(words)}
    unit = [matrix[index[w]].astype(np.float64) for pair in pairs for w in pair]
    unit = [u / np.linalg.norm(u) for u in unit]
    return float(np.mean([unit[k] @ unit[k + 1] for k in range(0, len(unit), 2)]))


def test_counterfitted_glove_pulls_synonyms_and_pushes_antonyms() -> None:
    from harness.artifacts import fetch
    from harness.catalog.adversarial import COUNTERFITTED_GLOVE, PARAMS_FILE, read_glove
    from harness.robust.wordvectors import counterfitted_vectors

    raw_words, raw = read_glove(fetch("glove-6b-50d"))  # fetch re-verifies the pinned digest
    words, fitted = counterfitted_vectors()
    raw_syn, fit_syn = _mean_cosine(raw_words, raw, SYNONYMS), _mean_cosine(words, fitted, SYNONYMS)
    raw_ant, fit_ant = _mean_cosine(raw_words, raw, ANTONYMS), _mean_cosine(words, fitted, ANTONYMS)
    assert fit_syn > raw_syn + 0.05, (raw_syn, fit_syn)
    assert fit_ant < raw_ant - 0.1, (raw_ant, fit_ant)
    record = json.loads((fetch(COUNTERFITTED_GLOVE.name) / PARAMS_FILE).read_text())
    assert record["parameters"] == cf.CounterFitParams().as_dict()
    assert record["counts"]["words"] == len(words) == len(fitted)
    assert len(COUNTERFITTED_GLOVE.sha256) == 64
    np.testing.assert_allclose(np.linalg.norm(fitted, axis=1), 1.0, atol=1e-3)
