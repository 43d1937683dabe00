"""Contamination: evaluation texts that also appear in data the model was trained or selected on.

Exact duplicates share a normalised key (``normalise.dedup_key``: case, whitespace, punctuation
and tokenisation spacing ignored). Near duplicates are found with datasketch's MinHash LSH over
character shingles of the key and then *verified*: a candidate counts only when the exact
Jaccard similarity of the two shingle sets reaches the threshold, so LSH's false candidates never
become matches. The LSH banding (``lsh_bands``) is chosen for recall rather than datasketch's
balanced default (which makes a pair exactly at the threshold a candidate only 44% of the time at
0.7 and 128 permutations): a pair at the threshold becomes a candidate with probability at
least ``LSH_RECALL``, and the extra candidates only cost a verification. Optionally, pairs whose sentence embeddings
(the model's encoder) have a cosine at or above ``embedding_threshold`` count as well.

Every evaluation example gets at most one match, the strongest (exact before near before
embedding, then higher similarity, then the seen data's order), naming the matched split and id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.data_checks.normalise import dedup_key, jaccard, shingles
from harness.records import Metric, proportion_metric

KIND_RANK = {"exact": 0, "near": 1, "embedding": 2}
LSH_RECALL = 0.99


def lsh_bands(threshold: float, num_perm: int, recall: float = LSH_RECALL) -> tuple[int, int]:
    """(bands, rows): the most rows per band (fewest false candidates) such that a pair of
    Jaccard ``threshold`` shares a band with probability >= ``recall``: 1 - (1 - J^r)^b."""
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= recall:
            best = (bands, rows)
    return best


@dataclass(frozen=True)
class SeenSet:
    """Texts the model saw (a training or selection split, or a file the user names)."""

    name: str
    ids: Sequence[str]
    texts: Sequence[str]


@dataclass(frozen=True)
class Match:
    kind: str  # "exact", "near" or "embedding"
    source: str  # the SeenSet's name
    id: str
    similarity: float  # 1.0 for exact; Jaccard of shingles for near; cosine for embedding


@dataclass(frozen=True)
class ContaminationParams:
    threshold: float = 0.7
    num_perm: int = 128
    shingle_size: int = 5
    seed: int = 1
    embedding_threshold: float | None = None


Embedder = Callable[[Sequence[str]], "np.ndarray | None"]


def _better(a: Match | None, b: Match) -> bool:
    """True when ``b`` should replace ``a``."""
    if a is None:
        return True
    return (KIND_RANK[b.kind], -b.similarity) < (KIND_RANK[a.kind], -a.similarity)


def _exact(keys: Sequence[str], seen: Sequence[SeenSet], seen_keys: Sequence[Sequence[str]]) -> list[Match | None]:
    first: dict[str, tuple[str, str]] = {}
    for s, ks in zip(seen, seen_keys, strict=True):
        for ident, key in zip(s.ids, ks, strict=True):
            if key:
                first.setdefault(key, (s.name, ident))
    out: list[Match | None] = []
    for key in keys:
        hit = first.get(key) if key else None
        out.append(None if hit is None else Match("exact", hit[0], hit[1], 1.0))
    return out


def _minhashes(sets: Sequence[set[str]], p: ContaminationParams) -> list[object]:
    from datasketch import MinHash

    data = ([s.encode("utf-8") for s in sorted(shingle_set)] for shingle_set in sets)
    return list(MinHash.generator(data, num_perm=p.num_perm, seed=p.seed))


def _near(
    eval_sets: Sequence[set[str]], seen: Sequence[SeenSet], seen_sets: Sequence[Sequence[set[str]]], p: ContaminationParams
) -> list[Match | None]:
    """MinHash-LSH candidates, verified by the exact Jaccard of the shingle sets."""
    from datasketch import MinHashLSH

    flat = [(s.name, ident, sh) for s, sets in zip(seen, seen_sets, strict=True) for ident, sh in zip(s.ids, sets, strict=True)]
    out: list[Match | None] = [None] * len(eval_sets)
    if not flat or not eval_sets:
        return out
    lsh = MinHashLSH(num_perm=p.num_perm, params=lsh_bands(p.threshold, p.num_perm))
    with lsh.insertion_session() as session:
        for k, m in enumerate(_minhashes([sh for _, _, sh in flat], p)):
            if flat[k][2]:
                session.insert(k, m)
    for i, m in enumerate(_minhashes(eval_sets, p)):
        if not eval_sets[i]:
            continue
        best: Match | None = None
        for k in sorted(lsh.query(m)):
            name, ident, sh = flat[k]
            sim = jaccard(eval_sets[i], sh)
            if sim >= p.threshold and _better(best, Match("near", name, ident, sim)):
                best = Match("near", name, ident, sim)
        out[i] = best
    return out


def _embedding(
    texts: Sequence[str], seen: Sequence[SeenSet], embed: Embedder, threshold: float
) -> list[Match | None]:
    out: list[Match | None] = [None] * len(texts)
    e = embed(texts)
    names = [(s.name, ident) for s in seen for ident in s.ids]
    f = embed([t for s in seen for t in s.texts]) if names else None
    if e is None or f is None or not len(texts):
        return out
    for start in range(0, len(texts), 512):  # cosine of unit vectors, in blocks
        block = e[start : start + 512] @ f.T
        best = block.argmax(axis=1)
        for j, k in enumerate(best.tolist()):
            sim = float(block[j, k])
            if sim >= threshold:
                out[start + j] = Match("embedding", names[k][0], names[k][1], sim)
    return out


def find_matches(
    texts: Sequence[str], seen: Sequence[SeenSet], params: ContaminationParams, embed: Embedder | None = None
) -> list[Match | None]:
    """The strongest match of each evaluation text among the seen sets (None: not seen)."""
    keys = [dedup_key(t) for t in texts]
    seen_keys = [[dedup_key(t) for t in s.texts] for s in seen]
    matches = _exact(keys, seen, seen_keys)
    eval_sets = [shingles(k, params.shingle_size) for k in keys]
    seen_sets = [[shingles(k, params.shingle_size) for k in ks] for ks in seen_keys]
    for i, near in enumerate(_near(eval_sets, seen, seen_sets, params)):
        if near is not None and _better(matches[i], near):
            matches[i] = near
    if params.embedding_threshold is not None and embed is not None:
        for i, hit in enumerate(_embedding(texts, seen, embed, params.embedding_threshold)):
            if hit is not None and _better(matches[i], hit):
                matches[i] = hit
    return matches


@dataclass(frozen=True)
class ContaminationResult:
    ids: Sequence[str]
    matches: Sequence[Match | None]
    sources: Sequence[str]

    @property
    def contaminated_ids(self) -> list[str]:
        return [i for i, m in zip(self.ids, self.matches, strict=True) if m is not None]

    def metrics(self) -> list[Metric]:
        n = len(self.ids) if self.sources else 0  # nothing seen is known: not checked (null), not 0%
        kinds = [m.kind for m in self.matches if m is not None]
        out = [
            proportion_metric("contamination.share", len(kinds), n, higher=False,
                              description="Share of evaluation examples found (exactly or nearly) in data the model saw: "
                              + (", ".join(self.sources) or "none named") + "."),
            proportion_metric("contamination.exact_share", kinds.count("exact"), n, higher=False,
                              description="Share that are exact duplicates after normalisation (case, spacing, punctuation)."),
            proportion_metric("contamination.near_share", kinds.count("near") + kinds.count("embedding"), n, higher=False,
                              description="Share that are near duplicates only (MinHash-LSH, verified Jaccard; or embedding cosine)."),
        ]  # fmt: skip
        for source in self.sources:
            k = sum(1 for m in self.matches if m is not None and m.source == source)
            out.append(proportion_metric(f"contamination.in.{source}", k, n, higher=False,
                                         description=f"Share whose strongest match is in {source}."))  # fmt: skip
        return out

    def examples(self, texts: Sequence[str], seen_text: Callable[[Match], str], limit: int) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        for ident, text, m in zip(self.ids, texts, self.matches, strict=True):
            if m is not None and len(rows) < limit:
                rows.append({"id": ident, "text": text, "kind": m.kind, "matched_split": m.source,
                             "matched_id": m.id, "matched_text": seen_text(m), "similarity": round(m.similarity, 4)})  # fmt: skip
        return rows
