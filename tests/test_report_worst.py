"""Issue 22, report defects 1-4: worst cases ranked by a stated key, outcomes in words, a model
card without cache paths or LoRA settings of a full fine-tune, the dev curve on two axes."""

from __future__ import annotations

import random
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from harness.records import ModelInfo
from harness.reports import card_view, outcomes, worst

LABELS = ["rotten", "fresh"]
BASE = "one two three four five six seven eight nine ten"


def _ids_in_order(tables: list[Any]) -> list[list[str]]:
    return [re.findall(r"<tr><td><code>([^<]*)</code>", str(t)) for t in tables]


def _replace(k: int) -> str:
    words = BASE.split()
    return " ".join(w.upper() if i < k else w for i, w in enumerate(words))


def attack_row(ident: str, k: int, p_after: float) -> dict[str, Any]:
    return {
        "id": ident, "recipe": "pwws", "result": "succeeded", "label": 1, "label_name": "fresh",
        "original_pred": 1, "perturbed_pred": 0, "original_text": BASE,
        "perturbed_text": _replace(k), "scores_before": [0.1, 0.9],
        "scores_after": [1 - p_after, p_after], "queries": 10,
    }


def test_attacks_are_ranked_by_smallest_flip_then_largest_drop() -> None:
    # (id, words changed, p(original) after): the expected order is written out by hand.
    spec = [("a", 4, 0.2), ("b", 1, 0.4), ("c", 1, 0.1), ("d", 3, 0.3), ("e", 2, 0.45),
            ("f", 6, 0.0), ("g", 1, 0.3)]
    rows: list[dict[str, Any]] = [attack_row(i, k, p) for i, k, p in spec]
    rows.append({"id": "z", "recipe": "pwws", "result": "failed", "original_text": BASE})
    random.Random(3).shuffle(rows)
    (table,) = worst.pair_cases(rows, LABELS)
    # 1 word: c (drop 0.8), g (0.6), b (0.5); then e (2 words), d (3); cut at PER_GROUP = 5
    assert _ids_in_order([table]) == [["c", "g", "b", "e", "d"]]
    assert "ranked by: smallest perturbation that flipped the label" in str(table)
    assert "5 of 7 successful attacks" in str(table)


def test_perturbations_are_ranked_by_largest_confidence_drop() -> None:
    drops = {"p1": 0.30, "p2": 0.75, "p3": 0.05, "p4": 0.51, "p5": 0.60, "p6": 0.20, "p7": 0.9}
    rows = [
        {"id": i, "perturbation": "typo", "flipped": True, "changed": True, "pred_before": 0,
         "pred_after": 1, "original_text": BASE, "perturbed_text": _replace(1),
         "scores_before": [0.95, 0.05], "scores_after": [0.95 - d, 0.05 + d]}
        for i, d in drops.items()
    ]
    rows.append({**rows[0], "id": "kept", "flipped": False})  # not flipped: never a worst case
    random.Random(1).shuffle(rows)
    (table,) = worst.pair_cases(rows, LABELS)
    expected = sorted(drops, key=lambda i: -drops[i])[: worst.PER_GROUP]
    assert _ids_in_order([table]) == [expected]
    assert "largest drop in the probability of the original prediction" in str(table)


def test_attributions_show_the_most_confident_errors_first() -> None:
    words = ["a", "b"]
    rows = [
        {"id": f"x{i}", "words": words, "attributions": {"ig": [0.1, -0.2]}, "label": 1,
         "predicted": 0 if i % 2 else 1, "probability": p}
        for i, p in enumerate([0.7, 0.55, 0.9, 0.99, 0.6, 0.8, 0.51, 0.97])
    ]
    html = "".join(str(m) for m in worst.attribution_cases(rows))
    shown = re.findall(r"id: (x\d)", html)
    wrong = sorted((r for r in rows if r["predicted"] != r["label"]), key=lambda r: -r["probability"])
    assert shown == [r["id"] for r in wrong]
    assert "most confident errors first" in html


def test_outcome_in_words() -> None:
    row = {"original_pred": 1, "perturbed_pred": 0, "scores_before": [0.004, 0.996],
           "scores_after": [0.992, 0.008], "label_name": "fresh"}
    pair = ("Thoughtful and exhilarating.", "heedful and exalt.")
    assert outcomes.in_words(row, pair, LABELS) == (
        "fresh → rotten, p(fresh) 0.996 → 0.008, 2 of 3 words changed"
    )
    swap = {"predicted_original": "rotten", "predicted_swapped": "fresh",
            "score_original": 0.4, "score_swapped": 0.61}
    assert outcomes.in_words(swap, ("his film", "her film"), LABELS) == (
        "rotten → fresh, score 0.400 → 0.610, 1 of 2 words changed"
    )
    assert outcomes.in_words({}, None, LABELS) == ""  # a row with nothing known reads as nothing


def test_outcome_edges() -> None:
    assert outcomes.words_changed("", "") == (0, 0)
    assert outcomes.words_changed("a b c", "a b c d") == (1, 3)
    assert outcomes.words_changed("that's it, that's all", "that is it, that is all") == (2, 4)
    assert outcomes.words_changed("a b c", "a c") == (1, 3)
    # an index outside the label set, and scores shorter than the class: no probability clause
    row = {"pred_before": 5, "pred_after": 0, "scores_before": [0.5], "scores_after": [0.5]}
    assert outcomes.in_words(row, None, LABELS) == "5 → rotten"


def _model(location: str) -> ModelInfo:
    return ModelInfo(name="m", source="finetune", location=location, digest="d" * 64,
                     max_length=8, label_names=LABELS)


def test_model_card_hides_cache_paths_and_lora_of_a_full_fine_tune() -> None:
    key = "0d9264d724ee669fd3bdd43a5df3dffc892677f097ddc4c7f7a07235f75fe196"
    shown = card_view.shown_location(_model(f"/root/.cache/harness/finetune/{key}"))
    assert shown == "harness cache: finetune/0d9264d724ee…"
    assert card_view.shown_location(_model("/models/tiny")) == "/models/tiny"
    hyper = {"learning_rate": 1e-4, "lora": {"r": 8}}
    assert "lora" not in card_view.shown_card({"method": "full", "hyperparameters": hyper})["hyperparameters"]
    assert card_view.shown_card({"method": "lora", "hyperparameters": hyper})["hyperparameters"] == hyper


def test_dev_curve_draws_loss_and_scores_on_separate_axes() -> None:
    curve = [{"step": 1, "accuracy": 0.8, "f1_macro": 0.79, "loss": 0.41},
             {"step": 2, "accuracy": 0.82, "f1_macro": 0.81, "loss": 2.5}]
    figure = str(card_view.dev_curves({"dev_curve": curve}))
    charts = re.findall(r"<svg.*?</svg>", figure, flags=re.S)
    assert len(charts) == 2
    scores, losses = charts
    assert "accuracy" in scores and "f1_macro" in scores and "loss" not in scores.replace("dev_curve", "")
    assert ">loss<" in losses and "accuracy" not in losses
    # the loss axis reaches 2.5; the score axis stays below 1
    assert ">2.5<" in losses or ">3<" in losses
    assert ">2.5<" not in scores


ANY = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 5), st.floats(allow_nan=True), st.text(max_size=5),
    st.lists(st.one_of(st.floats(allow_nan=True), st.integers(), st.text(max_size=2)), max_size=3),
)
KEYS = st.sampled_from(
    ["original_pred", "perturbed_pred", "pred_before", "pred_after", "scores_before",
     "scores_after", "predicted_original", "predicted_swapped", "score_original",
     "score_swapped", "queries", "abs_delta_p", "id", "probability"]
)


@given(st.dictionaries(KEYS, ANY, max_size=8), st.text(max_size=30), st.text(max_size=30))
def test_outcomes_never_fail_on_hostile_rows(row: dict[str, Any], a: str, b: str) -> None:
    """Rows come from suites and plugins written independently: any shape reads as text."""
    assert isinstance(outcomes.in_words(row, (a, b), LABELS), str)
    for rank in (outcomes.largest_drop(LABELS), outcomes.most_confident_error(),
                 outcomes.smallest_flip(LABELS, lambda r: (a, b))):
        rank.sort_key(row)
    k, n = outcomes.words_changed(a, a)
    assert (k, n) == (0, len(a.split()))
    k, n = outcomes.words_changed(a, b)
    assert 0 <= k <= n + len(b.split())
