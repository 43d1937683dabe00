"""The data suite's parts against their references: contamination (exact, near and tokenisation
variants), integrity on hostile texts, cleanlab's flags on a split with flipped labels, the
intervals and FDR adjustment against statsmodels."""

from __future__ import annotations

import numpy as np
import pytest

from harness.data_checks.contamination import (
    ContaminationParams,
    ContaminationResult,
    SeenSet,
    find_matches,
)
from harness.data_checks.integrity import check_integrity, script_of
from harness.data_checks.label_issues import MSG_TOO_FEW, find_issues
from harness.data_checks.normalise import dedup_key, jaccard, shingles
from harness.stats import Interval, wilson_interval
from harness.stats.differences import benjamini_hochberg, mover_difference, newcombe_difference

TRAIN = [
    "It's always fascinating to watch Marker the essayist at work.",
    "Don't expect much from this movie (or its sequel).",
    "A remarkable 179-minute meditation on the nature of revolution.",
    "The acting is wooden, the plot predictable and the ending a relief to everyone involved.",
]


# ------------------------------------------------------------------ normalisation


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("It's always fascinating.", "it 's always fascinating ."),
        ("Don't expect much (or its sequel).", "do n't expect much -lrb- or its sequel -rrb- ."),
        ("``Quoted'' words", '"quoted" words'),
        ("Café  au\tlait", "CAFÉ au lait"),
        ("ﬁne print", "fine print"),  # NFKC ligature
    ],
)
def test_dedup_key_ignores_case_spacing_punctuation_and_tokenisation(a: str, b: str) -> None:
    assert dedup_key(a) == dedup_key(b) and dedup_key(a)


def test_dedup_key_keeps_words_apart() -> None:
    assert dedup_key("a good film") != dedup_key("a bad film")
    assert dedup_key("!!! ...") == ""  # no letters: never matched to anything


def test_shingles_and_jaccard_edges() -> None:
    assert shingles("", 5) == set() and shingles("abc", 5) == {"abc"}
    assert jaccard(set(), set()) == 1.0 and jaccard({"a"}, {"b"}) == 0.0


# ------------------------------------------------------------------ contamination


def retokenise(text: str) -> str:
    """Lower-cased, punctuation split off: the way a re-tokenised copy of a corpus looks."""
    import re

    text = text.lower().replace("n't", " n't").replace("'s", " 's")
    return re.sub(r"\s+", " ", re.sub(r"([.,!?()\"])", r" \1 ", text)).strip()


def test_exact_near_and_tokenisation_variants_are_found_with_their_ids() -> None:
    seen = [SeenSet("train", [f"t{i}" for i in range(len(TRAIN))], TRAIN)]
    evaluation = [
        TRAIN[0],  # verbatim
        retokenise(TRAIN[1]),  # tokenisation variant: an exact match after normalisation
        "A remarkable 179-minute meditation on the nature of revolutions.",  # near: one letter
        "The acting is wooden, the plot predictable and the ending a relief to all involved.",  # near: a word
        "A charming, quietly funny portrait of two sisters on a road trip.",  # unseen
        "!!!",  # nothing to compare
    ]
    matches = find_matches(evaluation, seen, ContaminationParams(threshold=0.7))
    kinds = [None if m is None else (m.kind, m.id) for m in matches]
    assert kinds == [("exact", "t0"), ("exact", "t1"), ("near", "t2"), ("near", "t3"), None, None]
    assert all(m is None or m.kind == "exact" or 0.7 <= m.similarity < 1 for m in matches)
    # The reported similarity is the exact Jaccard of the shingle sets, not the MinHash estimate.
    sim = jaccard(shingles(dedup_key(evaluation[3]), 5), shingles(dedup_key(TRAIN[3]), 5))
    assert matches[3] is not None and matches[3].similarity == pytest.approx(sim)


def test_near_threshold_is_respected_and_exact_wins_over_near() -> None:
    seen = [SeenSet("dev", ["d0"], [TRAIN[3]]), SeenSet("train", ["t0"], [TRAIN[3] + " Really."])]
    m = find_matches([TRAIN[3]], seen, ContaminationParams(threshold=0.5))[0]
    assert m is not None and (m.kind, m.source, m.id) == ("exact", "dev", "d0")
    strict = find_matches(["The acting is wooden and the ending a relief."], seen, ContaminationParams(threshold=0.95))
    assert strict == [None]


def test_contamination_result_metrics_and_empty_inputs() -> None:
    assert find_matches([], [SeenSet("train", ["a"], ["x"])], ContaminationParams()) == []
    assert find_matches(["x y z"], [], ContaminationParams()) == [None]
    seen = [SeenSet("train", ["t0"], [TRAIN[0]])]
    texts = [TRAIN[0], "something else entirely, and long enough"]
    result = ContaminationResult(["e0", "e1"], find_matches(texts, seen, ContaminationParams()), ["train"])
    by_name = {m.name: m for m in result.metrics()}
    assert by_name["contamination.share"].value == 0.5 and by_name["contamination.share"].n == 2
    assert by_name["contamination.in.train"].value == 0.5
    assert result.contaminated_ids == ["e0"]
    rows = result.examples(texts, lambda m: TRAIN[0], 10)
    assert rows[0]["matched_id"] == "t0" and rows[0]["matched_split"] == "train"


# ------------------------------------------------------------------ integrity


def test_integrity_on_hostile_texts() -> None:
    texts = [
        "Good film.", "good   FILM!", "good film", "Bad film.",  # duplicates, one conflict
        "?!", "ok",  # near-empty (fewer than 3 letters or digits)
        "Отличный фильм", "很好的电影", "A film called Отличный фильм дома",  # scripts, one mixed
        "\u200b\u202eRTL override text", "x" * 100_000,
    ]
    labels = [1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0]
    result = check_integrity(texts, labels, ["neg", "pos", "neutral"], near_empty_chars=3)
    assert result.duplicate_groups == [[0, 1, 2]] and result.conflicting_groups == [[0, 1, 2]]
    assert result.n_duplicate_rows == 2
    assert result.near_empty == [4, 5]
    assert result.class_counts == {"neg": 5, "pos": 6, "neutral": 0}
    assert result.dominant_script[6:8] == ["CYRILLIC", "CJK"] and 8 in result.mixed_script
    by_name = {m.name: m for m in result.metrics()}
    assert by_name["integrity.missing_classes"].value == 1.0
    assert by_name["integrity.imbalance_ratio"].value == pytest.approx(6 / 5)
    assert by_name["integrity.duplicate_share"].value == pytest.approx(2 / 11)
    assert any("'neutral' has no example" in w for w in result.warnings)
    assert script_of("1") is None and script_of("ß") == "LATIN"


def test_integrity_of_an_empty_split() -> None:
    result = check_integrity([], [], ["neg", "pos"])
    assert {m.name: m.value for m in result.metrics()}["integrity.duplicate_share"] is None


# ------------------------------------------------------------------ label issues (cleanlab)


def flipped_split(n: int, flip: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two well-separated classes, ``flip`` of the labels flipped at random, and out-of-sample
    probabilities of a logistic regression (5-fold cross-validation on the noisy labels)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 5)) + 2.5 * y_true[:, None]
    flipped = rng.random(n) < flip
    y = np.where(flipped, 1 - y_true, y_true)
    probs = cross_val_predict(LogisticRegression(), x, y, cv=5, method="predict_proba")
    return y, probs, flipped


def test_cleanlab_recovers_flipped_labels() -> None:
    y, probs, flipped = flipped_split(1000, 0.10, seed=0)
    issues = find_issues(y.tolist(), probs)
    flagged = np.zeros(len(y), dtype=bool)
    flagged[issues.indices] = True
    precision = (flagged & flipped).sum() / flagged.sum()
    recall = (flagged & flipped).sum() / flipped.sum()
    assert issues.checked and precision >= 0.8 and recall >= 0.8, (precision, recall)
    assert issues.self_confidence == sorted(issues.self_confidence)  # most suspicious first


def test_cleanlab_flags_few_when_nothing_is_flipped() -> None:
    y, probs, _ = flipped_split(1000, 0.0, seed=1)
    issues = find_issues(y.tolist(), probs)
    assert issues.checked and len(issues.indices) <= 10  # <= 1% of the split


@pytest.mark.parametrize("n", [0, 1, 3])
def test_label_issues_refuse_tiny_splits_with_a_reason(n: int) -> None:
    issues = find_issues([0] * n, np.full((n, 2), 0.5))
    assert not issues.checked and issues.warnings == [MSG_TOO_FEW.format(n=n, minimum=10)]
    assert [m.value for m in issues.metrics()] == [None, None]


# ------------------------------------------------------------------ statistics against statsmodels


@pytest.mark.parametrize(("k1", "n1", "k2", "n2"), [(45, 50, 30, 50), (0, 10, 10, 10), (1, 1, 0, 3), (700, 1000, 650, 900), (5, 5, 5, 5)])
def test_newcombe_matches_statsmodels(k1: int, n1: int, k2: int, n2: int) -> None:
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")
    ours = newcombe_difference(k1, n1, k2, n2)
    assert ours.low == pytest.approx(low, abs=1e-9) and ours.high == pytest.approx(high, abs=1e-9)


def test_mover_edges() -> None:
    assert newcombe_difference(0, 0, 1, 2).low is None
    assert mover_difference(None, Interval(0, 1, ""), 0.5, Interval(0, 1, "")).low is None
    ci = mover_difference(0.5, wilson_interval(5, 10), 0.5, wilson_interval(5, 10))
    assert ci.low is not None and ci.high is not None and ci.low < 0 < ci.high and ci.low == pytest.approx(-ci.high)


@pytest.mark.parametrize("seed", range(5))
def test_benjamini_hochberg_matches_statsmodels(seed: int) -> None:
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(seed).uniform(size=12) ** 3
    p[3] = p[4]  # a tie
    assert benjamini_hochberg(p.tolist()) == pytest.approx(multipletests(p, method="fdr_bh")[1].tolist())
    assert benjamini_hochberg([]) == []
