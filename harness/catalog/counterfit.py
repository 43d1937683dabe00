"""Counter-fitting word vectors to synonym and antonym constraints (Mrkšić et al. 2016,
"Counter-fitting Word Vectors to Linguistic Constraints", NAACL), vectorised.

The published procedure (github.com/nmrksic/counter-fitting, ``counterfitting.py``) is full-batch
gradient steps on three hinge terms over unit vectors, each step computed from the vectors at
its start:

- antonym repel (AR): for each ordered antonym pair (i, j) with cosine distance < delta,
  ``u_i += k1 * (u_i (u_i . u_j) - u_j)``;
- synonym attract (SA): for each ordered synonym pair (i, j) with distance > gamma,
  ``u_j -= k2 * (u_j (u_j . u_i) - u_i)``;
- vector space preservation (VSP): for each ordered pair closer than rho in the original space
  whose distance grew, ``u_i -= k3 * (u_i (u_i . u_j) - u_j)``;

then every word's summed update is divided by the number of terms that touched it, added, and
the vectors renormalised (``v / sqrt(|v|^2 + 1e-6)``). Twenty steps. Here the same arithmetic
runs on index arrays (``np.add.at`` accumulates in pair order, so the result is reproducible).
Where this departs from the published code is listed in ``DEPARTURES``.

Lives in the catalog because the counter-fitted vectors are a pinned artifact built at fetch
time; it imports numpy only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

FloatMatrix = npt.NDArray[np.float64]
Pairs = npt.NDArray[np.int64]  # (n, 2) ordered pairs of row indices

DEPARTURES = (
    "float64 arithmetic on index arrays; the published code updates float32 vectors in Python "
    "dictionaries (same terms and order of operations, so results agree to float32 rounding)",
)


@dataclass(frozen=True)
class CounterFitParams:
    """The six hyperparameters of the paper (its experiment_parameters.cfg) and the step count."""

    k1: float = 0.1  # antonym repel weight
    k2: float = 0.1  # synonym attract weight
    k3: float = 0.1  # vector space preservation weight
    delta: float = 1.0  # antonyms are pushed until their cosine distance reaches delta
    gamma: float = 0.0  # synonyms are pulled while their distance exceeds gamma
    rho: float = 0.2  # VSP neighbourhood: pairs closer than rho in the original space
    iterations: int = 20

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def normalise(vectors: FloatMatrix) -> FloatMatrix:
    """Rows scaled to (almost) unit length, exactly as the published ``normalise_word_vectors``."""
    norms = np.sqrt(np.sum(vectors * vectors, axis=1, keepdims=True) + 1e-6)
    out: FloatMatrix = vectors / norms
    return out


def pairs_from_groups(groups: Iterable[Sequence[int]]) -> Pairs:
    """Every ordered pair (i, j), i != j, of indices that share a group (e.g. a synset)."""
    found = {(i, j) for group in groups for i in group for j in group if i != j}
    return as_pairs(found)


def as_pairs(pairs: Iterable[tuple[int, int]]) -> Pairs:
    """Sorted, de-duplicated ordered pairs as an (n, 2) int64 array (self-pairs dropped)."""
    unique = sorted({(int(i), int(j)) for i, j in pairs if i != j})
    return np.asarray(unique, dtype=np.int64).reshape(-1, 2)


def symmetric(pairs: Pairs) -> Pairs:
    """Both directions of every pair, as the published ``load_constraints`` reads them."""
    return as_pairs([*map(tuple, pairs.tolist()), *((j, i) for i, j in pairs.tolist())])


def subtract(pairs: Pairs, remove: Pairs) -> Pairs:
    """``pairs`` without those in ``remove`` (a synonym that is also an antonym is dropped)."""
    gone = {tuple(p) for p in remove.tolist()}
    return as_pairs(tuple(p) for p in pairs.tolist() if tuple(p) not in gone)


def vsp_pairs(vectors: FloatMatrix, rho: float, *, chunk: int = 256) -> tuple[Pairs, FloatMatrix]:
    """Ordered pairs (both directions) whose original cosine distance is <= rho, and those
    distances. ``vectors`` must be normalised."""
    found_i: list[npt.NDArray[np.int64]] = []
    found_j: list[npt.NDArray[np.int64]] = []
    for start in range(0, len(vectors), chunk):
        block = vectors[start : start + chunk]
        dist = 1.0 - block @ vectors.T
        rows, cols = np.nonzero(dist <= rho)
        rows = rows + start
        keep = rows != cols
        found_i.append(rows[keep].astype(np.int64))
        found_j.append(cols[keep].astype(np.int64))
    if not found_i:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    pairs = np.stack([np.concatenate(found_i), np.concatenate(found_j)], axis=1)
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    pairs = pairs[order]
    distances = _distance(vectors, pairs)
    return pairs, distances


def _distance(vectors: FloatMatrix, pairs: Pairs) -> FloatMatrix:
    """Cosine distance 1 - u_i . u_j of each pair (unit vectors)."""
    dots: FloatMatrix = np.einsum("ij,ij->i", vectors[pairs[:, 0]], vectors[pairs[:, 1]])
    return 1.0 - dots


def _tangent(vectors: FloatMatrix, pairs: Pairs) -> FloatMatrix:
    """``vector_partial_gradient(u_i, u_j) = u_i (u_i . u_j) - u_j`` for each pair."""
    u, v = vectors[pairs[:, 0]], vectors[pairs[:, 1]]
    out: FloatMatrix = u * np.einsum("ij,ij->i", u, v)[:, None] - v
    return out


def one_step(
    vectors: FloatMatrix,
    synonyms: Pairs,
    antonyms: Pairs,
    vsp: Pairs,
    vsp_original: FloatMatrix,
    params: CounterFitParams,
) -> FloatMatrix:
    """One full-batch step of the published ``one_step_SGD``."""
    updates = np.zeros_like(vectors)
    counts = np.zeros(len(vectors))
    if len(antonyms):
        near = antonyms[_distance(vectors, antonyms) < params.delta]
        np.add.at(updates, near[:, 0], params.k1 * _tangent(vectors, near))
        np.add.at(counts, near[:, 0], 1)
    if len(synonyms):
        far = synonyms[_distance(vectors, synonyms) > params.gamma]
        # the published code updates the pair's second word towards its first
        flipped = far[:, ::-1]
        np.add.at(updates, flipped[:, 0], -params.k2 * _tangent(vectors, flipped))
        np.add.at(counts, flipped[:, 0], 1)
    if params.k3 > 0 and len(vsp):
        # the published test is ``original_distance <= new_distance``: at the first step every
        # VSP pair (distance unchanged) gets the term
        grew = vsp_original <= _distance(vectors, vsp)
        moved = vsp[grew]
        np.add.at(updates, moved[:, 0], -params.k3 * _tangent(vectors, moved))
        np.add.at(counts, moved[:, 0], 1)
    touched = counts > 0
    stepped = vectors.copy()
    stepped[touched] += updates[touched] / counts[touched, None]
    return normalise(stepped)


@dataclass(frozen=True)
class CounterFitResult:
    vectors: FloatMatrix
    n_synonym_pairs: int
    n_antonym_pairs: int
    n_vsp_pairs: int


def counter_fit(
    vectors: npt.ArrayLike,
    synonyms: Pairs,
    antonyms: Pairs,
    params: CounterFitParams | None = None,
) -> CounterFitResult:
    """Counter-fit ``vectors`` (rows, any scale) to ordered synonym / antonym pairs.

    As in the published ``counter_fit``: vectors normalised first, synonym pairs that are also
    antonym pairs removed, VSP pairs computed from the normalised start vectors (antonym pairs
    dropped from them), then ``params.iterations`` steps."""
    p = params or CounterFitParams()
    start = normalise(np.asarray(vectors, dtype=np.float64))
    synonyms = subtract(synonyms, antonyms)
    if p.k3 > 0:
        vsp, original = vsp_pairs(start, p.rho)
        keep = np.ones(len(vsp), dtype=bool)
        if len(vsp) and len(antonyms):
            gone = {tuple(a) for a in antonyms.tolist()}
            keep = np.fromiter((tuple(x) not in gone for x in vsp.tolist()), bool, len(vsp))
        vsp, original = vsp[keep], original[keep]
    else:
        vsp, original = np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    current = start
    for _ in range(p.iterations):
        current = one_step(current, synonyms, antonyms, vsp, original, p)
    return CounterFitResult(current, len(synonyms), len(antonyms), len(vsp))
