"""Confirmed weak slices: where the model errs more than elsewhere, shown on data not used to find it.

1. **Candidates** are defined from the texts and declared columns only, never from labels of
   correctness: length tertiles, negation, questions, exclamations, digits, contrast words, upper-
   case words, mentions of named groups (word lists the caller passes), the true label, each
   declared group value and each pair of values of two group columns, and k-means clusters of
   sentence embeddings (described by their most distinctive words).
2. **Search**: the split is halved by a seeded hash of the example ids. On the search half, a
   candidate is kept when it has at least ``min_size`` examples there and its error rate exceeds
   the rest of the half with a one-sided Fisher exact p-value at most ``screen_alpha``.
3. **Confirmation**: each kept candidate is tested again on the other half (one-sided Fisher exact:
   more errors in the slice than in the rest of that half), and the p-values are adjusted by
   Benjamini–Hochberg; a slice is confirmed when its q-value is at most ``fdr``. Its figures (size,
   accuracy with a Wilson interval, the gap to the rest with Newcombe's interval) come from the
   confirmation half only, so the search's selection does not inflate them.

Because the halves are disjoint and the candidates do not depend on the outcomes, the
confirmation p-values of null slices are valid and BH bounds the false discovery rate (simulated
in tests/test_data_slices.py).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.data_checks.normalise import words
from harness.stats import wilson_interval
from harness.stats.differences import benjamini_hochberg, newcombe_difference

BoolArray = npt.NDArray[np.bool_]

NEGATION = re.compile(r"\b(?:not|no|never|nothing|nobody|none|neither|nor|nowhere|cannot|without|hardly|barely)\b|n['’]t\b", re.IGNORECASE)
PATTERNS: dict[str, tuple[re.Pattern[str], str]] = {
    "negation": (NEGATION, "contains a negation (not, no, never, n't, without…)"),
    "question": (re.compile(r"\?"), "contains a question mark"),
    "exclamation": (re.compile(r"!"), "contains an exclamation mark"),
    "digits": (re.compile(r"\d"), "contains a digit"),
    "contrast": (re.compile(r"\b(?:but|however|although|though|yet|despite|while)\b", re.IGNORECASE), "contains a contrast word (but, however, although…)"),
    "uppercase-word": (re.compile(r"\b[A-Z]{3,}\b"), "contains a word of three or more capitals"),
}


@dataclass(frozen=True)
class Candidate:
    slug: str  # metric-name safe: letters, digits, '_' and '-'
    description: str
    family: str
    mask: BoolArray


@dataclass(frozen=True)
class SliceParams:
    min_size: int = 20
    screen_alpha: float = 0.1
    fdr: float = 0.05
    n_clusters: int = 8
    seed: int = 0
    n_examples: int = 10


def slug(text: str) -> str:
    return re.sub(r"[^\w-]+", "-", text, flags=re.UNICODE).strip("-").lower() or "x"


def halves(ids: Sequence[str], seed: int) -> BoolArray:
    """True for the confirmation half: a seeded hash of each id (stable as the split grows)."""
    return np.array([hashlib.sha256(f"{seed}\0slices\0{i}".encode()).digest()[0] & 1 == 1 for i in ids], dtype=bool)


def _text_candidates(texts: Sequence[str], group_terms: Mapping[str, Sequence[str]]) -> list[Candidate]:
    out = []
    n_words = np.array([len(words(t)) for t in texts])
    if len(texts) >= 3:
        lo, hi = np.quantile(n_words, [1 / 3, 2 / 3])
        out += [
            Candidate("length-short", f"short: at most {int(lo)} words", "length", n_words <= lo),
            Candidate("length-medium", f"medium: {int(lo) + 1} to {int(hi)} words", "length", (n_words > lo) & (n_words <= hi)),
            Candidate("length-long", f"long: more than {int(hi)} words", "length", n_words > hi),
        ]
    for name, (pattern, desc) in PATTERNS.items():
        out.append(Candidate(name, desc, "text property", np.array([bool(pattern.search(t)) for t in texts], dtype=bool)))
    tokens = [set(words(t)) for t in texts]
    for group, terms in sorted(group_terms.items()):
        lowered = {t.casefold() for t in terms}
        shown = ", ".join(sorted(lowered)[:4])
        mask = np.array([bool(ws & lowered) for ws in tokens], dtype=bool)
        out.append(Candidate(f"mentions-{slug(group)}", f"mentions {group} ({shown}…)", "named group", mask))
    return out


def _column_candidates(labels: Sequence[int], label_names: Sequence[str], groups: Mapping[str, Sequence[str | None]]) -> list[Candidate]:
    y = np.asarray(labels)
    out = [Candidate(f"label-{slug(n)}", f"true label is {n!r}", "label", y == k) for k, n in enumerate(label_names)]
    values = {c: np.array(["(missing)" if v is None else str(v) for v in vs], dtype=object) for c, vs in sorted(groups.items())}
    for c, arr in values.items():
        for v in sorted(set(arr.tolist())):
            out.append(Candidate(f"group-{slug(c)}-{slug(v)}", f"{c} = {v!r}", "group", arr == v))
    cols = list(values)
    for i, a in enumerate(cols):
        for b in cols[i + 1 :]:
            for va in sorted(set(values[a].tolist())):
                for vb in sorted(set(values[b].tolist())):
                    mask = (values[a] == va) & (values[b] == vb)
                    out.append(Candidate(f"group-{slug(a)}-{slug(va)}-x-{slug(b)}-{slug(vb)}", f"{a} = {va!r} and {b} = {vb!r}", "group intersection", mask))
    return out


def _cluster_candidates(texts: Sequence[str], embeddings: npt.NDArray[np.float64] | None, k: int, seed: int) -> list[Candidate]:
    if embeddings is None or k < 2 or len(texts) < 2 * k:
        return []
    from sklearn.cluster import KMeans

    assign = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(embeddings)
    tokens = [set(words(t)) for t in texts]
    df_all = _doc_freq(tokens, np.ones(len(texts), dtype=bool))
    out = []
    for c in range(k):
        mask = assign == c
        df_c = _doc_freq(tokens, mask)
        size = int(mask.sum())
        # distinctive words: frequent in the cluster, rarer elsewhere (ratio of document shares)
        score = {w: (n / size) / ((df_all[w] - n + 1) / (len(texts) - size + 1)) for w, n in df_c.items() if n >= max(2, size // 20)}
        top = [w for w, _ in sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))[:4]]
        desc = f"embedding cluster {c} of {k}" + (f" (distinctive words: {', '.join(top)})" if top else "")
        out.append(Candidate(f"cluster-{c}", desc, "embedding cluster", mask))
    return out


def _doc_freq(tokens: Sequence[set[str]], mask: BoolArray) -> dict[str, int]:
    out: dict[str, int] = {}
    for ws, keep in zip(tokens, mask.tolist(), strict=True):
        if keep:
            for w in ws:
                out[w] = out.get(w, 0) + 1
    return out


def candidates(
    texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str], groups: Mapping[str, Sequence[str | None]],
    *, group_terms: Mapping[str, Sequence[str]] = {}, embeddings: npt.NDArray[np.float64] | None = None, n_clusters: int = 8, seed: int = 0,
) -> list[Candidate]:  # fmt: skip
    """Every candidate slice (module docstring), slugs made unique."""
    found = _text_candidates(texts, group_terms) + _column_candidates(labels, label_names, groups)
    found += _cluster_candidates(texts, embeddings, n_clusters, seed)
    seen: dict[str, int] = {}
    out = []
    for c in found:
        count = seen.get(c.slug, 0)
        seen[c.slug] = count + 1
        out.append(c if count == 0 else Candidate(f"{c.slug}-{count + 1}", c.description, c.family, c.mask))
    return out


def _fisher_greater(err_in: int, n_in: int, err_out: int, n_out: int) -> float:
    """One-sided Fisher exact p-value: the slice's error rate exceeds the rest's."""
    from scipy.stats import fisher_exact

    if n_in == 0 or n_out == 0:
        return 1.0
    table = [[err_in, n_in - err_in], [err_out, n_out - err_out]]
    return float(fisher_exact(table, alternative="greater")[1])


@dataclass(frozen=True)
class SliceResult:
    candidates: list[Candidate]
    tested: list[dict[str, Any]]  # candidates kept on the search half, with their confirmation
    confirmed: list[dict[str, Any]]
    half: BoolArray  # True: confirmation half
    params: SliceParams
    warnings: list[str] = field(default_factory=list)


def _stats(mask: BoolArray, wrong: BoolArray, scored: BoolArray) -> tuple[int, int, int, int]:
    inside, outside = mask & scored, ~mask & scored
    return int(wrong[inside].sum()), int(inside.sum()), int(wrong[outside].sum()), int(outside.sum())


def find_weak_slices(ids: Sequence[str], correct: Sequence[bool | None], found: list[Candidate], params: SliceParams) -> SliceResult:
    """Search on one half, confirm on the other, BH across the confirmations (module docstring).

    ``correct`` is None for an example without a prediction (it is in no half's figures)."""
    scored = np.array([c is not None for c in correct], dtype=bool)
    wrong = np.array([c is False for c in correct], dtype=bool)
    half = halves(ids, params.seed)
    tested: list[dict[str, Any]] = []
    for cand in found:
        e_in, n_in, e_out, n_out = _stats(cand.mask & ~half, wrong, scored & ~half)
        if n_in < params.min_size or e_in * n_out <= e_out * n_in:
            continue
        p_search = _fisher_greater(e_in, n_in, e_out, n_out)
        if p_search > params.screen_alpha:
            continue
        c_in, m_in, c_out, m_out = _stats(cand.mask & half, wrong, scored & half)
        tested.append({
            "slug": cand.slug, "description": cand.description, "family": cand.family, "n": int((cand.mask & scored).sum()),
            "search": {"n": n_in, "errors": e_in, "rest_n": n_out, "rest_errors": e_out, "p": p_search},
            "confirm": {"n": m_in, "errors": c_in, "rest_n": m_out, "rest_errors": c_out, "p": _fisher_greater(c_in, m_in, c_out, m_out)},
        })  # fmt: skip
    qs = benjamini_hochberg([t["confirm"]["p"] for t in tested])
    confirmed = []
    for t, q in zip(tested, qs, strict=True):
        t["confirm"]["q"] = q
        if q <= params.fdr and t["confirm"]["n"] > 0:
            confirmed.append(_describe(t, found, ids, wrong, half, params.n_examples))
    confirmed.sort(key=lambda s: (s["q"], s["slug"]))
    return SliceResult(found, tested, confirmed, half, params)


def _describe(t: dict[str, Any], found: list[Candidate], ids: Sequence[str], wrong: BoolArray, half: BoolArray, limit: int) -> dict[str, Any]:
    c = t["confirm"]
    acc_k, rest_k = c["n"] - c["errors"], c["rest_n"] - c["rest_errors"]
    ci = wilson_interval(acc_k, c["n"])
    gap = newcombe_difference(acc_k, c["n"], rest_k, c["rest_n"])
    mask = next(x.mask for x in found if x.slug == t["slug"])
    failing = [ids[int(i)] for i in np.flatnonzero(mask & wrong & half)][:limit]
    return {
        "slug": t["slug"], "description": t["description"], "family": t["family"], "n": t["n"],
        "n_confirm": c["n"], "accuracy": acc_k / c["n"], "ci_low": ci.low, "ci_high": ci.high,
        "rest_accuracy": rest_k / c["rest_n"] if c["rest_n"] else None,
        "gap": (acc_k / c["n"] - rest_k / c["rest_n"]) if c["rest_n"] else None, "gap_ci_low": gap.low, "gap_ci_high": gap.high,
        "p": c["p"], "q": c["q"], "search_accuracy": 1 - t["search"]["errors"] / t["search"]["n"], "failing_ids": failing,
    }  # fmt: skip
