"""The explain suite: attributions equal direct Captum calls, completeness holds, faithfulness
metrics give the known answer on a model that reads one word, and the suite resumes exactly."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from harness import registry
from harness.data import Dataset
from harness.explain.attribution import Settings, make_batch, shap_baseline_tokens
from harness.explain.engine import ExplainConfig, Explainer
from harness.explain.faithfulness import (
    RemovalConfig,
    curve_counts,
    n_top,
    rank_words,
    removal_sequences,
    trapezoid_area,
)
from harness.explain.sanity import randomised_head_copy
from harness.explain.words import NO_WORD, tokenize_words
from harness.models.hf import HFClassifier
from harness.records import ModelInfo
from harness.store import ExampleLog
from harness.suites.base import SuiteContext
from harness.suites.explain import ExplainParams, ExplainSuite
from tests.fixtures_text import make_rows

TEXTS = [
    "Unbelievably brilliant film, the acting was wonderful.",
    "Boring.",
    "The plot is dull and the ending is messy but the music is fun",
    "A charming movie",
]
TOL = 1e-5


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> HFClassifier:
    return HFClassifier.load(tiny_model_dir, name="tiny", source="path", max_length=32)


class AnalyticTextModel(torch.nn.Module):
    """Captum-style analytic toy with the HF call signature.

    logits = head(sum_t mask_t * relu(E[x_t])): piecewise linear in the embeddings, so with
    non-negative embeddings and a zero pad embedding, IG on the logit is exact:
    attribution_t = E[x_t] . (W[c] - 0) for target c.
    """

    def __init__(self, table: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding.from_pretrained(table.clone(), freeze=False)
        self.head = torch.nn.Linear(table.shape[1], weight.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(weight)
            self.head.bias.copy_(bias)
        self.config = SimpleNamespace(initializer_range=0.02)

    def get_input_embeddings(self) -> torch.nn.Embedding:
        return self.embed

    def forward(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        inputs_embeds: Any = None,
    ) -> Any:
        e = self.embed(input_ids) if inputs_embeds is None else inputs_embeds
        pooled = (torch.relu(e) * attention_mask.unsqueeze(-1).to(e.dtype)).sum(1)
        return SimpleNamespace(logits=self.head(pooled))


def adapter_for(model: torch.nn.Module, tokenizer: Any) -> HFClassifier:
    info = ModelInfo(name="analytic", source="path", location="-", digest="-", max_length=32)
    return HFClassifier(
        model=model.eval(),
        tokenizer=tokenizer,
        label_names=("neg", "pos"),
        device="cpu",
        max_length=32,
        batch_size=16,
        precision="fp32",
        info=info,
    )


def analytic_adapter(tiny: HFClassifier, *, seed: int = 0) -> HFClassifier:
    gen = torch.Generator().manual_seed(seed)
    vocab = tiny.tokenizer.vocab_size
    table = torch.rand((vocab, 4), generator=gen)
    table[tiny.tokenizer.pad_token_id] = 0.0
    weight = torch.randn((2, 4), generator=gen)
    return adapter_for(AnalyticTextModel(table, weight, torch.zeros(2)), tiny.tokenizer)


def one_word_adapter(tiny: HFClassifier, word: str) -> HFClassifier:
    """A model that reads one word only: logit_pos = 4 * count(word) - 2, logit_neg = 0."""
    tok = tiny.tokenizer
    (word_id,) = tok(word, add_special_tokens=False)["input_ids"]
    table = torch.zeros((tok.vocab_size, 2))
    table[word_id, 0] = 1.0
    weight = torch.tensor([[0.0, 0.0], [4.0, 0.0]])
    return adapter_for(AnalyticTextModel(table, weight, torch.tensor([0.0, -2.0])), tok)


def make_config(adapter: HFClassifier, **settings: Any) -> ExplainConfig:
    tok = adapter.tokenizer
    return ExplainConfig(
        methods=("ig", "gradient_shap", "ablation"),
        target="predicted",
        settings=Settings(**settings),
        removal=RemovalConfig(),
        baseline_id=int(tok.pad_token_id),
        shap_tokens=tuple(shap_baseline_tokens(tok)),
        label_names=("neg", "pos"),
        seed=3,
    )


def batched_words(adapter: HFClassifier, config: ExplainConfig, texts: list[str]) -> Any:
    """Our batched, padded attributions: word lists per method, deltas, targets, f(x)."""
    items, _ = tokenize_words(adapter.tokenizer, [f"t{i}" for i in range(len(texts))], texts, 32)
    batch = make_batch(adapter, items, config.baseline_id)
    explainer = Explainer(adapter=adapter, config=config)
    out = explainer.adapter.model(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask, token_type_ids=batch.token_type_ids
    ).logits.detach()
    f_all = out.softmax(-1) if config.settings.output == "probability" else out
    targets = [int(t) for t in out.argmax(-1)]
    f_x = f_all[torch.arange(len(texts)), targets].double().numpy()
    words, deltas = explainer.word_attributions(adapter.model, batch, targets, f_x, check=True)
    return items, batch, words, deltas, targets


# --------------------------------------------------------------------------- direct Captum
def direct_forward(model: Any, output: str) -> Any:
    def fwd(ids: Any, mask: Any, types: Any = None) -> Any:
        logits = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        return logits.softmax(-1) if output == "probability" else logits

    return fwd


def direct_words(tokenizer: Any, text: str, token_scores: torch.Tensor) -> list[float]:
    """Independent aggregation: sum token scores per word_id of the tokenizer."""
    word_ids = tokenizer(text, truncation=True, max_length=32).word_ids()
    n = max(w for w in word_ids if w is not None) + 1
    out = [0.0] * n
    for pos, w in enumerate(word_ids):
        if w is not None:
            out[w] += float(token_scores[pos])
    return out


def one_text(adapter: HFClassifier, text: str, baseline_id: int) -> tuple[Any, Any]:
    """The text alone, tokenised to its own length (no padding), and its baseline ids."""
    enc = adapter.encode([text])
    special = torch.tensor(
        adapter.tokenizer(text, truncation=True, max_length=32, return_special_tokens_mask=True)[
            "special_tokens_mask"
        ],
        dtype=torch.bool,
    )
    base = torch.where(special.unsqueeze(0), enc.input_ids, torch.full_like(enc.input_ids, baseline_id))
    return enc, base


def direct_lig(adapter: HFClassifier, text: str, target: int, n_steps: int, output: str) -> list[float]:
    from captum.attr import LayerIntegratedGradients

    enc, base = one_text(adapter, text, int(adapter.tokenizer.pad_token_id))
    lig = LayerIntegratedGradients(direct_forward(adapter.model, output), adapter.model.get_input_embeddings())
    attr = lig.attribute(
        enc.input_ids,
        baselines=base,
        target=target,
        additional_forward_args=(enc.attention_mask, enc.token_type_ids),
        n_steps=n_steps,
    )
    return direct_words(adapter.tokenizer, text, attr.sum(-1)[0].detach())


def direct_ablation(adapter: HFClassifier, text: str, target: int, output: str) -> list[float]:
    from captum.attr import FeatureAblation

    enc, base = one_text(adapter, text, int(adapter.tokenizer.pad_token_id))
    word_ids = adapter.tokenizer(text, truncation=True, max_length=32).word_ids()
    n = max(w for w in word_ids if w is not None) + 1
    mask = torch.tensor([[n if w is None else w for w in word_ids]])
    attr = FeatureAblation(direct_forward(adapter.model, output)).attribute(
        enc.input_ids,
        baselines=base,
        target=target,
        additional_forward_args=(enc.attention_mask, enc.token_type_ids),
        feature_mask=mask,
    )[0]
    return [float(attr[word_ids.index(w)]) for w in range(n)]


def max_diff(a: list[float], b: list[float]) -> float:
    assert len(a) == len(b)
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


# --------------------------------------------------------------------------- words
def test_subwords_are_summed_into_words_and_specials_excluded(tiny: HFClassifier) -> None:
    items, fast = tokenize_words(tiny.tokenizer, ["a"], ["Unbelievably good, isn't it?"], 32)
    item = items[0]
    assert fast
    assert item.words[:2] == ("Unbelievably", "good")
    assert item.word_of_token[0] == NO_WORD and item.word_of_token[-1] == NO_WORD
    first = item.token_positions()[0]
    assert len(first) > 1  # 'unbelievably' is several word pieces of the fixture vocabulary
    from harness.explain.words import words_from_tokens

    scores = np.arange(len(item.ids), dtype=np.float64)
    assert words_from_tokens(scores, item, how="sum")[0] == float(sum(first))
    assert words_from_tokens(scores, item, how="first")[0] == float(first[0])


# --------------------------------------------------------------------------- correctness
@pytest.mark.parametrize("output", ["logit", "probability"])
def test_analytic_model_matches_captum_and_closed_form(tiny: HFClassifier, output: str) -> None:
    adapter = analytic_adapter(tiny)
    config = make_config(adapter, output=output, n_steps=50)
    items, _, words, deltas, targets = batched_words(adapter, config, TEXTS)
    model = adapter.model
    for i, text in enumerate(TEXTS):
        assert max_diff(words["ig"][i], direct_lig(adapter, text, targets[i], 50, output)) <= TOL
        assert max_diff(words["ablation"][i], direct_ablation(adapter, text, targets[i], output)) <= TOL
        assert deltas["ig"][i]["relative_delta"] <= config.settings.tolerance
        if output == "logit":  # linear on the path: IG is exact, word = sum of E[x_t] . W[c]
            exact = (model.embed.weight[list(items[i].ids)] @ model.head.weight[targets[i]]).detach()
            expected = [float(exact[pos].sum()) for pos in items[i].token_positions()]
            assert max_diff(words["ig"][i], expected) <= TOL
            assert abs(deltas["ig"][i]["delta"]) <= TOL


def test_tiny_bert_attributions_equal_direct_captum(tiny: HFClassifier) -> None:
    config = make_config(tiny, n_steps=32)
    items, batch, words, deltas, targets = batched_words(tiny, config, TEXTS)
    assert batch.seq_len > min(len(it.ids) for it in items)  # the batch really is padded
    for i, text in enumerate(TEXTS):
        assert max_diff(words["ig"][i], direct_lig(tiny, text, targets[i], 32, "probability")) <= TOL
        assert max_diff(words["ablation"][i], direct_ablation(tiny, text, targets[i], "probability")) <= TOL
        assert deltas["ig"][i]["relative_delta"] <= config.settings.tolerance


def test_gradient_shap_equals_direct_captum_same_draws(tiny: HFClassifier) -> None:
    from captum.attr import GradientShap

    from harness.explain.attribution import EmbedsForward, embeds_inputs, gradient_shap, seeded

    config = make_config(tiny, shap_samples=6)
    items, _ = tokenize_words(tiny.tokenizer, ["a", "b"], TEXTS[:2], 32)
    batch = make_batch(tiny, items, config.baseline_id)
    with seeded(11):
        ours, _ = gradient_shap(tiny.model, batch, [1, 0], config.shap_tokens, config.settings)
    embeds, args = embeds_inputs(tiny.model, batch)
    table = tiny.model.get_input_embeddings()
    dist = torch.stack([table(torch.full_like(batch.input_ids[0], t)) for t in config.shap_tokens]).detach()
    with seeded(11):
        direct = GradientShap(EmbedsForward(tiny.model, "probability")).attribute(
            embeds, baselines=dist, target=[1, 0], additional_forward_args=args, n_samples=6
        )
    assert float(np.abs(ours - direct.sum(-1).detach().double().numpy()).max()) <= TOL
    # specials and padding are pinned, so they never carry attribution
    assert np.all(ours[~batch.keep.numpy()] == 0.0)


def test_completeness_raises_n_steps_to_the_cap(tiny: HFClassifier) -> None:
    adapter = analytic_adapter(tiny, seed=1)
    config = make_config(adapter, output="probability", n_steps=2, max_n_steps=8, tolerance=1e-9)
    deltas = batched_words(adapter, config, TEXTS[:2])[3]
    assert {d["n_steps"] for d in deltas["ig"]} == {8}
    assert all(not d["within_tolerance"] for d in deltas["ig"])
    loose = make_config(adapter, output="probability", n_steps=2, max_n_steps=64, tolerance=1e-3)
    _, _, _, deltas, _ = batched_words(adapter, loose, TEXTS[:2])
    for d in deltas["ig"]:
        assert d["within_tolerance"] and d["relative_delta"] <= 1e-3 and 2 < d["n_steps"] <= 64


# --------------------------------------------------------------------------- faithfulness
def test_removal_bins_and_curves() -> None:
    assert [n_top(k, 7) for k in (1, 5, 10, 20, 50)] == [1, 1, 1, 2, 4]
    assert n_top(50, 0) == 0
    assert curve_counts(4, 5) == [0, 1, 2, 3, 4]
    assert rank_words([0.1, 0.5, 0.5, -1.0]) == [1, 2, 0, 3]
    assert trapezoid_area([1.0, 0.0]) == 0.5
    assert trapezoid_area([1.0, 1.0, 1.0]) == 1.0
    from harness.explain.words import TokenizedText

    # [CLS] w0 w1a w1b w2 [SEP]; ranking w1 > w2 > w0
    item = TokenizedText("x", (9, 10, 11, 12, 13, 8), (NO_WORD, 0, 1, 1, 2, NO_WORD), ("a", "bc", "d"), False)
    seqs = removal_sequences(item, [1, 2, 0], RemovalConfig(ks=(10.0, 50.0), curve_points=4))
    assert seqs["comp:10"] == (9, 10, 13, 8) and seqs["suff:10"] == (9, 11, 12, 8)
    assert seqs["comp:50"] == (9, 10, 8) and seqs["suff:50"] == (9, 11, 12, 13, 8)
    assert seqs["del:0"] == item.ids and seqs["ins:0"] == (9, 8) and seqs["del:3"] == (9, 8)


def test_one_word_model_gets_all_attribution_and_maximal_comprehensiveness(tiny: HFClassifier) -> None:
    adapter = one_word_adapter(tiny, "brilliant")
    texts = ["the film was brilliant and fun", "brilliant acting but a dull plot indeed"]
    config = make_config(adapter, output="probability", n_steps=64)
    items, _ = tokenize_words(adapter.tokenizer, ["a", "b"], texts, 32)
    rows = Explainer(adapter=adapter, config=config).explain(items, [1, 1])
    p_with, p_without = 1 / (1 + np.exp(-2.0)), 1 / (1 + np.exp(2.0))
    for row in rows:
        key = row["words"].index("brilliant")
        assert row["target"] == 1 and row["probability"] == pytest.approx(p_with, abs=1e-6)
        for method in ("ig", "gradient_shap", "ablation"):
            attrs = row["attributions"][method]
            assert rank_words(attrs)[0] == key
            assert all(abs(a) <= 1e-7 for j, a in enumerate(attrs) if j != key)
            faith = row["faithfulness"][method]
            for k, comp in faith["comprehensiveness"].items():
                # removing the one word the model reads is the largest possible drop
                assert comp == pytest.approx(p_with - p_without, abs=1e-6), k
                assert faith["sufficiency"][k] == pytest.approx(0.0, abs=1e-6)
            assert faith["aopc_comprehensiveness"] >= row["faithfulness"]["random"]["aopc_comprehensiveness"]
            assert faith["deletion_curve"][1] == pytest.approx(p_without, abs=1e-6)
            assert faith["insertion_curve"][1] == pytest.approx(p_with, abs=1e-6)
        # IG sums to F(x) - F(baseline) exactly in the limit: here within tolerance
        assert row["deltas"]["ig"]["relative_delta"] <= config.settings.tolerance
        assert sum(row["attributions"]["ig"]) == pytest.approx(p_with - p_without, abs=1e-3)


def test_randomised_head_copy_changes_only_the_head(tiny: HFClassifier) -> None:
    clone, names = randomised_head_copy(tiny.model, seed=5)
    assert names and all(n.startswith("classifier") for n in names)
    original = dict(tiny.model.named_parameters())
    for name, param in clone.named_parameters():
        if name not in names:
            assert torch.equal(param, original[name]), name
        elif name.endswith("weight"):
            assert not torch.equal(param, original[name]), name


# --------------------------------------------------------------------------- the suite
def small_dataset() -> Dataset:
    rows = make_rows(12)
    return Dataset(
        name="tiny",
        split="test",
        ids=tuple(r["id"] for r in rows),
        texts=tuple(r["text"] for r in rows),
        labels=tuple(int(r["label"] == "pos") for r in rows),
        label_names=("neg", "pos"),
    )


def run_suite(adapter: HFClassifier, run_dir: Path, params: ExplainParams) -> tuple[Any, list[dict[str, Any]]]:
    log = ExampleLog(run_dir / "examples" / "explain.jsonl").open()
    ctx = SuiteContext(
        seed=0, run_dir=run_dir, examples=log, logger=logging.getLogger("test"), predictions=lambda: None
    )
    try:
        outcome = ExplainSuite(params=params).run(adapter, small_dataset(), ctx)
    finally:
        log.close()
    return outcome, log.rows_in_order(outcome.example_order)


SMALL = dict(
    n_examples=5, batch_size=2, n_steps=8, shap_samples=4, n_robustness=1, n_sanity=2,
    n_bootstrap=50, infidelity_samples=3, sensitivity_samples=2,
)


def test_suite_rows_metrics_and_exact_resume(tiny: HFClassifier, tmp_path: Path) -> None:
    params = ExplainParams(**SMALL)
    first, rows = run_suite(tiny, tmp_path / "a", params)
    assert len(rows) == 5
    assert set(rows[0]) >= {"id", "words", "attributions", "predicted", "probability", "target", "deltas"}
    assert all(len(r["attributions"][m]) == len(r["words"]) for r in rows for m in params.methods)
    names = {m.name: m for m in first.metrics}
    for key in ("ig.comprehensiveness.aopc", "ablation.sufficiency.k20", "ig.completeness.relative_delta"):
        assert names[key].value is not None and names[key].n == 5
        assert names[key].ci_low is not None and names[key].ci_low <= names[key].value <= names[key].ci_high
    assert names["ig.infidelity"].n == 1 and names["ig.sanity.spearman"].n == 2
    assert set(first.details["global_words"]["ig"]) == {"neg", "pos"}
    # Crash after 3 rows, then resume: the stored rows are kept, the rest recomputed identically.
    src = (tmp_path / "a" / "examples" / "explain.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "b" / "examples").mkdir(parents=True)
    (tmp_path / "b" / "examples" / "explain.jsonl").write_text("".join(src[:3]) + src[3][:20])
    second, resumed = run_suite(tiny, tmp_path / "b", params)
    assert json.dumps(resumed, sort_keys=True) == json.dumps(rows, sort_keys=True)
    assert [m.model_dump() for m in second.metrics] == [m.model_dump() for m in first.metrics]


def test_suite_is_registered_and_params_are_checked() -> None:
    assert registry.suites.get("explain") is ExplainSuite
    with pytest.raises(ValueError, match="ks"):
        ExplainParams(ks=[0, 5])
    with pytest.raises(ValueError, match="max_n_steps"):
        ExplainParams(n_steps=100, max_n_steps=50)
    with pytest.raises(ValueError):
        ExplainParams(methods=["lime"])
