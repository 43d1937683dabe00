"""The shift test's permutation p-value: uniform when both samples come from one shuffled pool
(seeded simulations, size at 0.05 within [0.03, 0.07]), tiny for a different corpus; and the
per-feature shifts against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from harness.data_checks.embed import embeddings, fallback_embeddings
from harness.data_checks.shift import feature_shift, mmd_test
from tests.fixtures_text import make_rows

OTHER_CORPUS = [
    "Install the package with pip and run the command line tool.",
    "The compiler reports an error on line twelve of the module.",
    "Set the environment variable before starting the server process.",
    "Memory usage grows linearly with the number of open connections.",
    "The function returns a list of integers sorted in ascending order.",
    "Each request is retried three times with an exponential backoff.",
    "Upgrade the database schema before deploying the new release.",
    "The cache is invalidated whenever the configuration file changes.",
]


@pytest.fixture(autouse=True)
def one_blas_thread() -> object:
    """Small matrices: BLAS threads only contend (10x slower on a loaded 2-core machine)."""
    with threadpool_limits(1):
        yield


def test_mmd_size_under_the_null_in_simulation() -> None:
    """2,000 seeded tests of two samples drawn from one pool: the share with p <= 0.05."""
    rng = np.random.default_rng(12345)
    pvalues = []
    for rep in range(2000):
        pool = rng.standard_t(df=5, size=(60, 6))  # heavy-tailed, like real embeddings' outliers
        pool = pool[rng.permutation(60)]
        pvalues.append(mmd_test(pool[:30], pool[30:], n_permutations=99, seed=rep).p_value)
    size = float(np.mean(np.asarray(pvalues) <= 0.05))
    assert 0.03 <= size <= 0.07, size
    # ~uniform, not only at 0.05: p takes the values k/100 (k = 1..100), ten per decile
    ranks = np.rint(np.asarray(pvalues) * 100).astype(int)
    counts = np.bincount((ranks - 1) // 10, minlength=10)
    assert counts.min() >= 150 and counts.max() <= 250, counts


def test_mmd_size_on_texts_from_one_shuffled_pool() -> None:
    """The suite's path on texts: TF-IDF/SVD embeddings (fitted once on the whole pool; they read
    no labels, so exchangeability holds), 1,000 seeded splits of the shuffled pool, 40 vs 40."""
    texts = [r["text"] for r in make_rows(400, seed=3)]
    emb = fallback_embeddings(texts, seed=0)
    rng = np.random.default_rng(7)
    pvalues = []
    for rep in range(1000):
        pick = rng.permutation(len(texts))[:80]
        pvalues.append(mmd_test(emb[pick[:40]], emb[pick[40:]], n_permutations=99, seed=rep).p_value)
    size = float(np.mean(np.asarray(pvalues) <= 0.05))
    assert 0.03 <= size <= 0.07, size


def test_mmd_finds_a_different_corpus(tiny_model_dir: object) -> None:
    from harness.models.hf import HFClassifier

    texts = [r["text"] for r in make_rows(60, seed=5)]
    other = OTHER_CORPUS * 5
    emb = fallback_embeddings(texts + other)
    assert mmd_test(emb[:60], emb[60:], n_permutations=199).p_value == pytest.approx(1 / 200)
    model = HFClassifier.load(tiny_model_dir, name="tiny", source="path", max_length=32)  # type: ignore[arg-type]
    emb, how = embeddings(model, texts + other, batch_size=16)
    assert "encoder" in how and emb.shape == (100, 32)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0)
    assert mmd_test(emb[:60], emb[60:], n_permutations=199).p_value <= 0.01


def test_mmd_edges() -> None:
    assert mmd_test(np.zeros((1, 3)), np.zeros((5, 3))).p_value is None
    same = np.ones((10, 3))
    result = mmd_test(same, same, n_permutations=19)
    assert result.p_value == 1.0  # identical points: nothing to tell apart


def test_feature_shift_against_scipy() -> None:
    from scipy.stats import chi2_contingency, ks_2samp

    ref = ["a good film", "a bad film here", "good good good", "one two three four five"]
    ev = ["a film", "totally unseen words here now", "good"]
    f = feature_shift(ref, [0, 1, 0, 1], ev, [0, 0, 1], k=2)
    ks = ks_2samp([3, 4, 3, 5], [2, 5, 1])
    assert f.length_ks == pytest.approx(ks.statistic) and f.length_p == pytest.approx(ks.pvalue)
    assert f.label_p == pytest.approx(chi2_contingency([[2, 2], [2, 1]])[1])
    assert f.oov_share == pytest.approx(4 / 8)  # totally, unseen, words, now of 8 tokens
    assert f.vocab_coverage == pytest.approx(4 / 8)
    assert feature_shift([], [], ["x"], [0], k=2).oov_share == 1.0
