"""Validity checks of successful attacks on a constructed set with known valid and invalid
adversarial examples (tests/validity_cases.py); precision and recall by scikit-learn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sklearn.metrics import precision_score, recall_score

from harness.errors import ConfigError
from harness.robust.recipes import REFERENCE_ANGULAR_SIMILARITY
from harness.robust.validity import (
    ValidityChecker,
    ValidityParams,
    changes,
    osa_distance,
    read_lexicon,
    valid_result,
)
from tests.validity_cases import CASES


@pytest.fixture(scope="module")
def checked() -> list[dict[str, Any]]:
    from harness.robust.resources import (
        AttackResources,
        PosTagger,
        SentenceEncoder,
        angular_similarity,
    )

    res = AttackResources.fetch()
    encoder = SentenceEncoder(res.encoder_dir)
    checker = ValidityChecker(
        ValidityParams(), encoder=encoder, tagger=PosTagger(res.tagger_dir),
        lexicon=read_lexicon(res.tagger_dir),
    )  # fmt: skip
    sims = angular_similarity(encoder.cosine([c[0] for c in CASES], [c[1] for c in CASES]))
    return [
        checker.check(
            o, p, 1, similarity=float(s), recipe_threshold=REFERENCE_ANGULAR_SIMILARITY, level=lv
        )
        for (o, p, _, lv), s in zip(CASES, sims, strict=True)
    ]


def test_checks_separate_valid_from_invalid(checked: list[dict[str, Any]]) -> None:
    truth_invalid = [not valid for _, _, valid, _ in CASES]
    flagged = [not c["valid"] for c in checked]
    precision = precision_score(truth_invalid, flagged)
    recall = recall_score(truth_invalid, flagged)
    print(f"rejecting invalid examples: precision {precision:.3f} recall {recall:.3f}")
    # Figures on this set (reported in the issue): precision 0.75, recall 0.90; the misses are
    # a typo or a looser synonym that USE-m scores below TextFooler's 0.8408.
    assert recall >= 0.8 and precision >= 0.7
    # The structural checks never reject a valid example here: only similarity errs.
    for name in ("pos", "char_edits"):
        fired = [name in c["rejected_by"] for c in checked]
        assert any(fired)
        assert precision_score(truth_invalid, fired) == 1.0, name


def test_each_check_applies_only_to_its_kind_of_change(checked: list[dict[str, Any]]) -> None:
    by_text = {p: c for (_, p, _, _), c in zip(CASES, checked, strict=True)}
    typo = by_text["a charming and delihgtful little film"]
    assert typo["checks"]["pos"]["passed"] is None  # no dictionary-word swap
    assert typo["checks"]["char_edits"] == {
        "passed": True, "edits": 1, "max_edits_in_a_word": 1, "budget": 3.7, "per_word_budget": 2,
    }  # fmt: skip
    swap = by_text["it is a big run from start to finish"]
    assert swap["checks"]["char_edits"]["passed"] is None
    assert swap["checks"]["pos"]["mismatches"] == ["mess/NOUN -> run/VERB"]


def test_edges() -> None:
    lexicon = frozenset({"good", "fine", "film"})
    assert changes("", "", lexicon).swaps == []
    same = changes("good film", "good film", lexicon)
    assert same.swaps == [] and same.char_changes == []
    split = changes("good film", "go od film", lexicon)  # a split word is a character change
    assert split.char_changes == [("good", "go od")]
    # by the recipe's level: a word recipe's rare synonym is a swap, a multi-word one neither;
    # a character recipe's typo that makes another word is still a character edit
    assert changes("good film", "sapience film", lexicon, level="word").swaps == [(0, 0)]
    phrase = changes("good film", "good piece of work", lexicon, level="word")
    assert phrase.swaps == [] and phrase.char_changes == []
    typo = changes("good film", "fine film", lexicon, level="char")
    assert typo.swaps == [] and typo.char_changes == [("good", "fine")]
    assert changes("good film", "fine film", lexicon).swaps == [(0, 0)]  # mixed: both in it
    assert osa_distance("abcd", "abdc") == 1  # a transposition is one edit
    assert osa_distance("", "abc") == 3
    assert osa_distance("kitten", "sitting") == 3
    assert valid_result("succeeded", {"valid": False}) == "rejected"
    assert valid_result("succeeded", None) == "succeeded"
    assert valid_result("failed", {"valid": False}) == "failed"


def test_unchanged_text_passes_every_applicable_check() -> None:
    class NoTagger:
        def tag(self, words: list[str]) -> list[str]:
            raise AssertionError("no swap, no tagging")

    checker = ValidityChecker(
        ValidityParams(), encoder=None, tagger=NoTagger(), lexicon=frozenset()
    )
    out = checker.check("a b", "a b", 0, similarity=None, recipe_threshold=0.84)
    assert out["valid"] and out["rejected_by"] == []
    assert {k: v["passed"] for k, v in out["checks"].items()} == {
        "similarity": None, "pos": None, "char_edits": None,
    }  # fmt: skip


def _reference_probs(folder: Path, first: list[str], second: list[str] | None = None) -> Any:
    """The judge model's softmax straight from transformers, one text (pair) at a time."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    out = []
    for i, text in enumerate(first):
        enc = tok(text, None if second is None else second[i], return_tensors="pt")
        with torch.inference_mode():
            out.append(torch.softmax(model(**enc).logits, dim=-1)[0].numpy())
    return out


def test_nli_judge_reads_entailment(tmp_path: Path) -> None:
    from harness.robust.judge import Judge
    from harness.robust.validity import JudgeParams
    from tests.conftest import build_tiny_bert

    folder = build_tiny_bert(tmp_path / "nli", labels=["entailment", "neutral", "contradiction"])
    params = JudgeParams(path=str(folder), kind="nli", threshold=0.3)
    judge = Judge(params, label_names=("neg", "pos"), base_dir=tmp_path).load()
    out = judge.check("a good film", "a fine film", 1)
    (ref,) = _reference_probs(folder, ["a good film"], ["a fine film"])
    assert out["value"] == pytest.approx(float(ref[0]), rel=1e-5)
    assert out["passed"] is (float(ref[0]) >= 0.3)
    wrong = build_tiny_bert(tmp_path / "not-nli", labels=["neg", "pos"])
    with pytest.raises(ConfigError, match="is not an NLI model"):
        Judge(JudgeParams(path=str(wrong)), label_names=("neg", "pos"), base_dir=tmp_path).load()


def test_classifier_judge_keeps_the_true_label_or_does_not_apply(tmp_path: Path) -> None:
    from harness.robust.judge import Judge
    from harness.robust.validity import JudgeParams
    from tests.conftest import build_tiny_bert

    folder = build_tiny_bert(tmp_path / "clf")
    judge = Judge(
        JudgeParams(path=str(folder), kind="classifier", threshold=0.5),
        label_names=("neg", "pos"), base_dir=tmp_path,
    ).load()  # fmt: skip
    texts = ["a good film", "a bad plot", "dull and boring", "wonderful acting"]
    refs = _reference_probs(folder, texts)
    for label in (0, 1):
        for original, ref_o in zip(texts, refs, strict=True):
            out = judge.check(original, texts[0], label)
            if int(ref_o.argmax()) != label:
                assert out["passed"] is None and out["note"] == "judge misreads the original"
            else:
                p = float(refs[0][label])
                assert out["value"] == pytest.approx(p, abs=1e-5)
                assert out["passed"] is (p >= 0.5)
    with pytest.raises(ConfigError, match="a classifier judge needs the dataset's labels"):
        Judge(
            JudgeParams(path=str(folder), kind="classifier"), label_names=("bad", "good"),
            base_dir=tmp_path,
        ).load()  # fmt: skip


def test_suite_reports_valid_success_with_wilson_interval(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from statsmodels.stats.proportion import proportion_confint

    from harness.data import Dataset
    from harness.models.hf import HFClassifier
    from harness.reports.adversarial import rejected_examples
    from tests.fixtures_text import make_rows
    from tests.test_robustness import run_suite, train_tiny

    model = HFClassifier.load(
        train_tiny(tiny_model_dir, tmp_path / "m"), name="t", source="path", max_length=32
    )
    rows = make_rows(40, seed=7)
    data = Dataset(
        name="f", split="test", ids=tuple(r["id"] for r in rows),
        texts=tuple(r["text"] for r in rows),
        labels=tuple(int(r["label"] == "pos") for r in rows), label_names=("neg", "pos"),
    )  # fmt: skip
    outcome, done = run_suite(model, data, tmp_path / "run", recipes=["deepwordbug"], n_examples=8)
    attacked = [r for r in done.values() if r["result"] != "skipped"]
    valid = [r for r in attacked if r["valid_result"] == "succeeded"]
    for r in done.values():  # the counted outcome follows the checks
        expect = (
            "rejected" if r["result"] == "succeeded" and not r["validity"]["valid"] else r["result"]
        )
        assert r["valid_result"] == expect
    metric = next(m for m in outcome.metrics if m.name == "deepwordbug.valid_attack_success_rate")
    assert metric.value == pytest.approx(len(valid) / len(attacked))
    low, high = proportion_confint(len(valid), len(attacked), method="wilson")
    assert (metric.ci_low, metric.ci_high) == (pytest.approx(low), pytest.approx(high))
    summary = outcome.details["recipes"]["deepwordbug"]["validity"]
    assert summary["valid_succeeded"] == len(valid)
    assert summary["rejected"] == sum(r["valid_result"] == "rejected" for r in done.values())
    html = "".join(str(m) for m in rejected_examples(list(done.values())))
    assert "rejected by the validity checks" in html and "harness review export" in html
