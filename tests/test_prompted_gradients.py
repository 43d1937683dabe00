"""Gradient access for the prompted and NLI kinds (masked-lm, causal-lm, zero-shot-nli):
``adapter.model`` is a ``SplicedClassifier`` over the TEXT's own tokens that splices the pattern,
prompt, demonstrations, hypotheses and answers in as embeddings inside its forward.

Checked against references, never against the module itself: its logits equal a plain Hugging
Face forward on the full concatenated token ids (log softmax at the mask, summed answer token
log-probabilities, entailment logits of tokenizer-built pairs) for a padded batch with a
truncated, a one-token and an empty text; the explain engine's IG equals Captum's own
``LayerIntegratedGradients`` on the module, Captum's ``IntegratedGradients`` on its
``inputs_embeds``, and Captum's ``IntegratedGradients`` on the PLAIN model over the full
sequence's embeddings with a baseline that differs at the text positions only (there the
pattern's attributions are exactly zero); completeness holds, with contextual calibration on
too; a pattern token's embedding moves the scores; a model that refuses ``inputs_embeds``
keeps its predictions and says why it has no gradients."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from harness.errors import ModelError
from harness.explain.attribution import Settings, make_batch, shap_baseline_tokens
from harness.explain.engine import ExplainConfig, Explainer
from harness.explain.faithfulness import RemovalConfig
from harness.explain.sanity import randomised_head_copy
from harness.explain.words import tokenize_for
from harness.models.kinds.base import gradient_unavailable
from harness.models.kinds.spliced import (
    MSG_NO_CONTEXT,
    MSG_NOT_RIGHT_PADDED,
    SplicedClassifier,
)
from tests import kind_loading

MAX_LENGTH = 24
LONG = "Dull, tedious plot, and the ending is a mess. " * 6
TEXTS = ["A charming and moving film.", "good", "", LONG]
# the pattern's own markers inside a text are text tokens: the readout stays where the pattern is
HOSTILE = ["[MASK] it was [MASK]", "a {text} b {mask} [SEP] [CLS] {}"]
WORDS = {"neg": "bad", "pos": "good"}
KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "masked-lm": ("tiny_mlm_dir", {"verbalizer": WORDS}),
    "causal-lm": ("tiny_gpt2_dir", {"prompt": "Review: {text} Sentiment:",
                                    "verbalizer": {"neg": " negative", "pos": " positive"}}),
    "zero-shot-nli": ("tiny_nli_dir", {"hypothesis_template": "This review is {}.", "label_words": WORDS}),
}  # fmt: skip


def load(folder: Path, csv: Path, kind: str, params: dict[str, Any]) -> Any:
    return kind_loading.load(folder, csv, kind, params, MAX_LENGTH)


@pytest.fixture(params=sorted(KINDS))
def kind_adapter(request: pytest.FixtureRequest, tiny_csv: Path) -> tuple[str, Any]:
    fixture, params = KINDS[request.param]
    return request.param, sharpen(
        load(request.getfixturevalue(fixture), tiny_csv, request.param, params)
    )


def sharpen(adapter: Any) -> Any:
    """Scale the model's weights up in place: a randomly initialised tiny model (weights ~ N(0,
    0.02)) is nearly flat in its text, so its score gaps (1e-6) sit at float32 noise; x10 in the
    body (x1000 for the NLI head, whose logits are ~0.02) puts gaps at 1e-4..1e-1."""
    hf = adapter.model.model
    with torch.no_grad():
        for module in hf.base_model.modules():
            if isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D":
                module.weight.mul_(10)
        if hasattr(hf, "classifier"):
            hf.classifier.weight.mul_(1000)
    return adapter


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------ the hand computation
def own(tok: Any, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"])


PATTERNS = {
    "masked-lm": "{} It was [MASK].",
    "causal-lm": "Review: {} Sentiment:",
    "zero-shot-nli": "{}",
}


def budget_of(kind: str, tok: Any) -> int:
    """Tokens left for the text, from the tokenizer's own encoding of the empty-text pattern."""
    if kind == "zero-shot-nli":
        return MAX_LENGTH - len(tok("", "This review is bad.")["input_ids"])
    return MAX_LENGTH - len(tok(PATTERNS[kind].format(""))["input_ids"]) - (kind == "causal-lm")


def cut(tok: Any, text: str, budget: int) -> str:
    """The text up to its budget-th token (the fixture texts cut at a word boundary)."""
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    return text if len(enc["input_ids"]) <= budget else text[: enc["offset_mapping"][budget - 1][1]]


def full_sequences(kind: str, tok: Any, text: str) -> list[tuple[list[int], list[int] | None, int]]:
    """Per label: the full token ids the plain model reads (the tokenizer's own encoding of the
    pattern filled with the text as one string), their token types (None: the model's default)
    and where the readout is (the mask / the first answer token)."""
    text = cut(tok, text, budget_of(kind, tok))
    if kind == "masked-lm":
        ids = list(tok(PATTERNS[kind].format(text))["input_ids"])
        return [(ids, None, len(ids) - 1 - ids[::-1].index(tok.mask_token_id))]
    if kind == "causal-lm":  # GPT-2: no special tokens
        ctx = list(tok(PATTERNS[kind].format(text))["input_ids"])
        return [(ctx + own(tok, a), None, len(ctx)) for a in (" negative", " positive")]
    pairs = [tok(text, f"This review is {w}.") for w in ("bad", "good")]
    return [(list(e["input_ids"]), list(e["token_type_ids"]), 0) for e in pairs]


def readout(kind: str, model: Any, seqs: list[tuple[list[int], list[int] | None, int]], answers: list[list[int]],
            embeds: Any = None) -> Any:  # fmt: skip
    """The kind's label scores from plain model forwards on ``seqs`` (or their ``embeds``)."""
    scores = []
    for k, (ids, types, at) in enumerate(seqs):
        kwargs: dict[str, Any] = (
            {"input_ids": torch.tensor([ids])} if embeds is None else {"inputs_embeds": embeds[k]}
        )
        if types is not None:
            kwargs["token_type_ids"] = torch.tensor([types])
        logits = model(**kwargs).logits[0]
        if kind == "zero-shot-nli":
            scores.append(logits[2])  # entailment is the fixture's label 2
        elif kind == "masked-lm":
            return logits[at].double().log_softmax(-1)[answers[0]]
        else:
            logp = logits.double().log_softmax(-1)
            scores.append(sum(logp[at - 1 + j, t] for j, t in enumerate(answers[k])))
    return torch.stack([s.double() for s in scores])


def label_tokens(kind: str, tok: Any) -> list[list[int]]:
    if kind == "masked-lm":
        return [[tok.convert_tokens_to_ids(w) for w in ("bad", "good")]]
    return [own(tok, " negative"), own(tok, " positive")]


def by_hand(kind: str, adapter: Any, texts: list[str]) -> np.ndarray:
    tok, hf = adapter.tokenizer, adapter.model.model
    with torch.no_grad():
        rows = [
            readout(kind, hf, full_sequences(kind, tok, t), label_tokens(kind, tok)).numpy()
            for t in texts
        ]
    return np.asarray(rows)


def test_gradient_access_is_declared(kind_adapter: tuple[str, Any]) -> None:
    kind, adapter = kind_adapter
    assert gradient_unavailable(adapter) is None
    model = adapter.model
    assert isinstance(model, SplicedClassifier) and not model.training
    assert model.get_input_embeddings() is model.model.get_input_embeddings()
    assert model.config is model.model.config and model.base_model is model.model.base_model
    assert adapter.info().n_parameters == sum(p.numel() for p in model.model.parameters())
    assert adapter.text_budget == budget_of(kind, adapter.tokenizer) > 0


def test_module_logits_equal_the_kind_scores_and_a_plain_forward(
    kind_adapter: tuple[str, Any],
) -> None:
    kind, adapter = kind_adapter
    rows, truncated = adapter.tokenize(TEXTS)
    assert truncated == [False, False, False, True] and len(rows[1]) == 1 and rows[2] == []
    padded = adapter.collate(rows)
    expected = by_hand(kind, adapter, TEXTS)
    np.testing.assert_allclose(
        adapter.predict_proba(HOSTILE), softmax(by_hand(kind, adapter, HOSTILE)), atol=1e-5
    )
    with torch.no_grad():
        wrapped = adapter.model(
            input_ids=padded.input_ids, attention_mask=padded.attention_mask
        ).logits
        one_by_one = torch.cat([adapter.scores(adapter.collate([r])) for r in rows])
        embeds = adapter.model.get_input_embeddings()(padded.input_ids)
        by_embeds = adapter.model(inputs_embeds=embeds, attention_mask=padded.attention_mask).logits
    assert wrapped.shape == (len(TEXTS), 2)
    for got in (wrapped, one_by_one, by_embeds, adapter.scores(padded)):
        np.testing.assert_allclose(got.detach().double().numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(adapter.predict_proba(TEXTS), softmax(expected), atol=1e-5)
    # the full truncated sequence fills max_length exactly (same budget as before)
    longest = full_sequences(kind, adapter.tokenizer, TEXTS[3])
    assert max(len(ids) for ids, _, _ in longest) == MAX_LENGTH


def test_explain_tokens_are_the_kind_text_tokens(kind_adapter: tuple[str, Any]) -> None:
    _, adapter = kind_adapter
    items, fast = tokenize_for(adapter, [f"t{i}" for i in range(len(TEXTS))], TEXTS)
    rows, truncated = adapter.tokenize(TEXTS)
    assert fast and [list(it.ids) for it in items] == rows
    assert [it.truncated for it in items] == truncated
    assert items[0].words == ("A", "charming", "and", "moving", "film", ".")
    assert items[2].n_words == 0 and items[1].words == ("good",)


def test_forward_refuses_what_it_cannot_splice(kind_adapter: tuple[str, Any]) -> None:
    model = kind_adapter[1].model
    ids = torch.tensor([[5, 6, 7]])
    with pytest.raises(ValueError, match="exactly one of input_ids and inputs_embeds"):
        model(attention_mask=torch.ones_like(ids))
    with pytest.raises(ValueError, match="token types of its pieces"):
        model(input_ids=ids, token_type_ids=torch.zeros_like(ids))
    with pytest.raises(ValueError, match=MSG_NOT_RIGHT_PADDED.split(":")[0]):
        model(input_ids=ids, attention_mask=torch.tensor([[0, 1, 1]]))
    assert torch.equal(
        model(input_ids=ids).logits,
        model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits,
    )


def close(actual: Any, desired: Any, rel: float = 1e-4) -> None:
    """Equal to ``rel`` of the largest |desired| (the tiny random models' attributions are
    1e-6..1e-2, so a fixed atol would pass anything)."""
    desired = np.asarray(desired, dtype=np.float64)
    scale = float(np.abs(desired).max()) if desired.size else 0.0
    np.testing.assert_allclose(actual, desired, rtol=rel, atol=rel * scale + 1e-12)


def complete(total: float, gap: float, rel: float = 0.01) -> None:
    """IG completeness: the attributions sum to F(x) - F(baseline) within ``rel`` of it, above a
    float32 floor (F is a float32 probability or log-probability: ~1e-7 per evaluation)."""
    assert abs(total - gap) <= rel * abs(gap) + 1e-6, (total, gap)


# ------------------------------------------------------------------ IG against Captum
def explain_config(adapter: Any, output: str, n_steps: int = 32) -> ExplainConfig:
    tok = adapter.tokenizer
    return ExplainConfig(
        methods=("ig", "gradient_shap", "ablation"), target="predicted",
        settings=Settings(output=output, n_steps=n_steps, tolerance=0.05), removal=RemovalConfig(),
        baseline_id=int(tok.pad_token_id), shap_tokens=tuple(shap_baseline_tokens(tok)),
        label_names=adapter.label_names, seed=3,
    )  # fmt: skip


def engine_ig(
    adapter: Any, texts: list[str], output: str, n_steps: int = 32
) -> tuple[Any, Any, Any, Any]:
    config = explain_config(adapter, output, n_steps)
    items, _ = tokenize_for(adapter, [f"t{i}" for i in range(len(texts))], texts)
    batch = make_batch(adapter, items, config.baseline_id)
    with torch.no_grad():
        out = adapter.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    f_all = out.softmax(-1) if output == "probability" else out
    targets = [int(t) for t in out.argmax(-1)]
    f_x = f_all[torch.arange(len(texts)), targets].double().numpy()
    words, deltas = Explainer(adapter=adapter, config=config).word_attributions(
        adapter.model, batch, targets, f_x, check=True
    )
    return items, targets, words, deltas


def forward_of(model: Any, output: str) -> Any:
    def forward(x: Any, mask: Any, embeds: bool = False) -> Any:
        logits = model(
            **({"inputs_embeds": x} if embeds else {"input_ids": x}), attention_mask=mask
        ).logits
        return logits.softmax(-1) if output == "probability" else logits

    return forward


def word_sums(token: Any, word_of_token: tuple[int, ...], n_words: int) -> list[float]:
    words = [0.0] * n_words
    for pos, w in enumerate(word_of_token):
        if w >= 0:
            words[w] += float(token[pos])
    return words


@pytest.mark.parametrize("output", ["probability", "logit"])
def test_ig_equals_captum_and_is_complete(kind_adapter: tuple[str, Any], output: str) -> None:
    from captum.attr import IntegratedGradients, LayerIntegratedGradients

    _, adapter = kind_adapter
    model, pad = adapter.model, adapter.tokenizer.pad_token_id
    items, targets, words, deltas = engine_ig(adapter, TEXTS, output)
    forward = forward_of(model, output)
    for i, item in enumerate(items):
        ids = torch.tensor([list(item.ids) or [pad]])
        mask = torch.tensor([[1] * len(item.ids) or [0]])
        base = torch.full_like(ids, pad)
        steps = int(deltas["ig"][i]["n_steps"])
        lig = LayerIntegratedGradients(forward, model.get_input_embeddings()).attribute(
            ids, baselines=base, target=targets[i], additional_forward_args=(mask,), n_steps=steps
        )
        direct = word_sums(lig.sum(-1)[0].detach(), item.word_of_token, item.n_words)
        table = model.get_input_embeddings()
        with torch.no_grad():
            x, b = table(ids), table(base)
        ig = IntegratedGradients(forward).attribute(
            x, baselines=b, target=targets[i], additional_forward_args=(mask, True), n_steps=steps
        )
        by_embeds = word_sums(ig.sum(-1)[0].detach(), item.word_of_token, item.n_words)
        assert len(words["ig"][i]) == len(direct) == item.n_words
        close(words["ig"][i], direct)
        close(by_embeds, direct)
        with torch.no_grad():
            gap = float(forward(ids, mask)[0, targets[i]] - forward(base, mask)[0, targets[i]])
        if direct:  # completeness: the text's words carry F(x) - F(baseline)
            complete(sum(direct), gap)
            assert deltas["ig"][i]["relative_delta"] <= 0.05
            close(deltas["ig"][i]["f_input"] - deltas["ig"][i]["f_baseline"], gap, rel=1e-3)
        assert (
            np.all(np.isfinite(words["gradient_shap"][i]))
            and len(words["ablation"][i]) == item.n_words
        )


def test_pattern_gets_no_attribution_and_ig_equals_the_plain_model(
    kind_adapter: tuple[str, Any],
) -> None:
    """Captum IG on the plain HF model over the FULL sequence's embeddings, the baseline equal to
    the input except at the text positions (pad there): the pattern's attributions are exactly
    zero and the text's equal the module's (logit output: label k reads sequence k only)."""
    from captum.attr import IntegratedGradients

    kind, adapter = kind_adapter
    tok, hf, table = adapter.tokenizer, adapter.model.model, adapter.model.get_input_embeddings()
    text = TEXTS[0]
    items, targets, words, _ = engine_ig(adapter, [text], "logit", n_steps=24)
    content, target = list(items[0].ids), targets[0]
    answers = label_tokens(kind, tok)
    seqs = full_sequences(kind, tok, text)
    k = 0 if kind == "masked-lm" else target
    ids, types, at = seqs[k]
    start = 1 if kind != "causal-lm" else len(own(tok, "Review:"))
    text_pos = list(range(start, start + len(content)))
    assert ids[start : start + len(content)] == content
    base_ids = [tok.pad_token_id if j in text_pos else t for j, t in enumerate(ids)]
    with torch.no_grad():
        x, b = table(torch.tensor([ids])), table(torch.tensor([base_ids]))

    def plain(e: Any) -> Any:
        sub = [(ids, types, at)] if kind != "masked-lm" else seqs
        one = (
            answers
            if kind == "masked-lm"
            else [answers[target]]
            if kind == "causal-lm"
            else answers
        )
        out = [readout(kind, hf, sub, one, embeds=[row[None]]) for row in e]
        return torch.stack([o if kind == "masked-lm" else o[0] for o in out]).reshape(len(e), -1)

    col = target if kind == "masked-lm" else 0
    attr = (
        IntegratedGradients(plain)
        .attribute(x, baselines=b, target=col, n_steps=24)[0]
        .sum(-1)
        .detach()
    )
    outside = [j for j in range(len(ids)) if j not in text_pos]
    assert torch.all(attr[outside] == 0), attr[outside]
    close(word_sums(attr[text_pos], items[0].word_of_token, items[0].n_words), words["ig"][0])


def test_a_pattern_token_embedding_moves_the_scores(kind_adapter: tuple[str, Any]) -> None:
    kind, adapter = kind_adapter
    rows, _ = adapter.tokenize(TEXTS[:1])
    enc = adapter.collate(rows)
    pattern_token = own(
        adapter.tokenizer,
        "Sentiment:" if kind == "causal-lm" else "was" if kind == "masked-lm" else "is",
    )[0]
    unused = next(i for i in range(adapter.tokenizer.vocab_size - 1, 0, -1)
                  if i not in rows[0] and i not in adapter.model.fixed_ids.tolist())  # fmt: skip
    before = adapter.model(
        input_ids=enc.input_ids, attention_mask=enc.attention_mask
    ).logits.detach()
    # The LMs' output layer is tied to the input table: every row moves their log-softmax
    # normaliser, so the unmoved control is the NLI classifier's.
    controls = [(pattern_token, True)] + ([(unused, False)] if kind == "zero-shot-nli" else [])
    for token, moves in controls:
        clone = copy.deepcopy(adapter.model)
        with torch.no_grad():
            row = clone.get_input_embeddings().weight[
                token
            ]  # not a uniform shift: LayerNorm removes one
            row += torch.randn(row.shape, generator=torch.Generator().manual_seed(0))
        after = clone(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits.detach()
        assert (not torch.allclose(before, after, atol=1e-6)) is moves, token


# ------------------------------------------------------------------ calibration
def test_calibrated_ig_is_complete_against_the_calibrated_scores(
    tiny_mlm_dir: Path, tiny_csv: Path
) -> None:
    """Contextual calibration subtracts log p_cf per label: the scores the engine explains are
    the calibrated ones (completeness against a hand-calibrated F), and the logit attributions
    equal the uncalibrated ones (a constant offset has no gradient)."""
    plain = sharpen(load(tiny_mlm_dir, tiny_csv, "masked-lm", {"verbalizer": WORDS}))
    params = {"verbalizer": WORDS, "calibrate": True}
    calibrated = sharpen(load(tiny_mlm_dir, tiny_csv, "masked-lm", params))  # p_cf from before
    p_cf = np.asarray(calibrated.info().kind_details["calibration"]["p_cf"])
    texts = [*TEXTS[:2], LONG]
    items, targets, words, deltas = engine_ig(calibrated, texts, "probability", n_steps=64)
    pad = calibrated.tokenizer.pad_token_id
    raw_x = by_hand("masked-lm", plain, texts)
    with torch.no_grad():
        rows = [[pad] * len(it.ids) for it in items]
        enc = plain.collate(rows)
        raw_b = (
            plain.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask)
            .logits.double()
            .numpy()
        )
    fx, fb = softmax(raw_x - np.log(p_cf)), softmax(raw_b - np.log(p_cf))
    for i, t in enumerate(targets):
        gap = fx[i, t] - fb[i, t]
        complete(sum(words["ig"][i]), gap)
        np.testing.assert_allclose(deltas["ig"][i]["f_input"], fx[i, t], atol=1e-6)
        np.testing.assert_allclose(deltas["ig"][i]["f_baseline"], fb[i, t], atol=1e-6)
    np.testing.assert_allclose(calibrated.predict_proba(texts), fx, atol=1e-6)
    _, t_plain, w_plain, _ = engine_ig(plain, texts, "logit")
    _, t_cal, w_cal, _ = engine_ig(calibrated, texts, "logit")
    for i in range(len(texts)):
        if t_plain[i] == t_cal[i]:
            close(w_cal["ig"][i], w_plain["ig"][i])


# ------------------------------------------------------------------ edges
def test_randomised_head_copy_leaves_the_text_embeddings(kind_adapter: tuple[str, Any]) -> None:
    kind, adapter = kind_adapter
    clone, changed = randomised_head_copy(adapter.model, seed=5)
    assert changed and all(n.startswith("model.") for n in changed)
    norms = [n for n in changed if "LayerNorm.weight" in n]
    assert all(torch.all(dict(clone.named_parameters())[n] == 1) for n in norms)
    if kind == "masked-lm":  # the MLM transform's LayerNorm: a scale of 1, not a flat head
        assert norms
        enc = adapter.collate(adapter.tokenize(TEXTS[:2])[0])
        with torch.no_grad():
            logits = clone(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits
        assert float(logits[:, 0].sub(logits[:, 1]).abs().max()) > 1e-6
    if kind != "causal-lm":  # GPT-2's only head is its tied output embedding (the fallback)
        table = dict(clone.named_parameters())
        emb = next(
            n
            for n, p in adapter.model.named_parameters()
            if p is adapter.model.get_input_embeddings().weight
        )
        assert emb not in changed and torch.equal(
            table[emb], adapter.model.get_input_embeddings().weight
        )


def test_causal_prompt_without_context_is_refused_for_an_empty_text(
    tiny_gpt2_dir: Path, tiny_csv: Path
) -> None:
    adapter = load(
        tiny_gpt2_dir,
        tiny_csv,
        "causal-lm",
        {"prompt": "{text}", "verbalizer": {"neg": " negative", "pos": " positive"}},
    )
    assert adapter.predict_proba(["good film"]).shape == (1, 2)
    with pytest.raises(ModelError, match=MSG_NO_CONTEXT[:40]):
        adapter.predict_proba([""])


def test_a_model_without_inputs_embeds_keeps_its_predictions(
    tiny_nli_dir: Path, tiny_csv: Path
) -> None:
    """A forward that refuses inputs_embeds (as BART's sequence classifier does): ids are
    spliced instead, predictions are unchanged, and the kind says why it has no gradients."""
    from transformers import BertForSequenceClassification

    class IdsOnly(BertForSequenceClassification):  # type: ignore[misc]
        def forward(self, *args: Any, inputs_embeds: Any = None, **kwargs: Any) -> Any:
            if inputs_embeds is not None:
                raise NotImplementedError("Passing input embeddings is currently not supported")
            return super().forward(*args, **kwargs)

    adapter = load(tiny_nli_dir, tiny_csv, "zero-shot-nli", KINDS["zero-shot-nli"][1])
    expected = adapter.predict_proba(TEXTS)
    model = adapter.model
    ids_only = IdsOnly(model.model.config)
    ids_only.load_state_dict(model.model.state_dict())
    spliced = SplicedClassifier(
        ids_only.eval(), model.splice, readout="entailment", entail=model.entail
    )
    spliced.probe([5, 6])
    assert spliced.gradient_unavailable and "inputs_embeds" in spliced.gradient_unavailable
    assert spliced.as_dict()["splice"] == "ids"
    adapter._module = spliced
    np.testing.assert_allclose(adapter.predict_proba(TEXTS), expected, atol=1e-6)
    with pytest.raises(ValueError, match="inputs_embeds"):
        spliced(inputs_embeds=torch.zeros(1, 2, 32))


def test_forward_tokens_count_what_the_model_runs(kind_adapter: tuple[str, Any]) -> None:
    """The engine sizes its passes by ``forward_tokens``: K rows of head + text + tail."""
    _, adapter = kind_adapter
    seen: list[tuple[int, ...]] = []
    base = adapter.model.model.base_model  # BERT's embeddings see the rows on every path
    hook = getattr(base, "embeddings", base).register_forward_pre_hook(
        lambda _m, _a, kw: seen.append(tuple(kw["inputs_embeds"].shape[:2])), with_kwargs=True
    )
    try:
        rows, _ = adapter.tokenize([LONG])
        enc = adapter.collate(rows)
        with torch.no_grad():
            adapter.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask)
    finally:
        hook.remove()
    (n_rows, length), width = seen[0], enc.input_ids.shape[1]
    assert n_rows == 1 if adapter.model.readout == "mask" else n_rows == 2
    assert adapter.model.forward_tokens(width) >= n_rows * length
    assert adapter.model.forward_tokens(width) - adapter.model.forward_tokens(width - 1) == n_rows


def test_output_head_at_the_readout_positions_equals_the_full_forward(
    kind_adapter: tuple[str, Any],
) -> None:
    """The LMs run their vocabulary projection at the mask / answer positions only (probed at
    load); the full forward gives the same scores and gradients."""
    kind, adapter = kind_adapter
    model = adapter.model
    assert (
        model.lm_head == {"masked-lm": "cls", "causal-lm": "lm_head", "zero-shot-nli": None}[kind]
    )
    forward = adapter.info().kind_details["forward"]
    assert forward["splice"] == "embeddings" and forward["gradient_unavailable"] is None
    assert forward["output_head_at_readout_only"] == model.lm_head
    assert forward["classifier_forward"] == (
        "cls-only-last-layer" if kind == "zero-shot-nli" else None
    )
    enc = adapter.collate(adapter.tokenize(TEXTS)[0])
    embeds = model.get_input_embeddings()(enc.input_ids).detach().requires_grad_(True)
    sliced = model(inputs_embeds=embeds, attention_mask=enc.attention_mask).logits
    (grad_sliced,) = torch.autograd.grad(sliced[:, 0].sum(), embeds)
    full_model = copy.deepcopy(model)
    full_model.lm_head = None
    full = full_model(inputs_embeds=embeds, attention_mask=enc.attention_mask).logits
    (grad_full,) = torch.autograd.grad(full[:, 0].sum(), embeds)
    np.testing.assert_allclose(sliced.detach().numpy(), full.detach().numpy(), atol=1e-5)
    close(grad_sliced.numpy(), grad_full.numpy())


def test_hypotheses_and_answers_of_different_lengths(
    tiny_nli_dir: Path, tiny_gpt2_dir: Path, tiny_csv: Path
) -> None:
    """Tails of different lengths in one batch: NLI against transformers' zero-shot pipeline and
    a plain forward on the tokenizer's pair encodings (the truncated text too: the hypotheses'
    budget is the longest one's, the pipeline's only_first on it), multi-token answers
    (normalize: mean) against a plain forward, IG still complete."""
    from transformers import pipeline

    words = {"neg": "bad", "pos": "very good indeed"}
    nli = load(tiny_nli_dir, tiny_csv, "zero-shot-nli", {"label_words": words})
    pipe = pipeline("zero-shot-classification", model=str(tiny_nli_dir), device="cpu")
    for text, probs in zip(TEXTS[:2], nli.predict_proba(TEXTS[:2]), strict=True):
        out = pipe(
            text, candidate_labels=list(words.values()), hypothesis_template="This example is {}."
        )
        by_label = dict(zip(out["labels"], out["scores"], strict=True))
        np.testing.assert_allclose(probs, [by_label[w] for w in words.values()], atol=1e-5)
    sharpen(nli)  # then the entailment logits against the tokenizer's own pair encodings
    enc = nli.collate(nli.tokenize(TEXTS)[0])
    with torch.no_grad():
        got = nli.scores(enc).double().numpy()
        longest = nli.tokenizer("", "This example is very good indeed.")["input_ids"]
        for i, text in enumerate(TEXTS):  # every pair's premise: the longest hypothesis' budget
            premise = cut(nli.tokenizer, text, MAX_LENGTH - len(longest))
            for k, w in enumerate(words.values()):
                pair = nli.tokenizer(premise, f"This example is {w}.", return_tensors="pt")
                want = float(nli.model.model(**pair).logits[0, 2])
                np.testing.assert_allclose(got[i, k], want, rtol=1e-5, atol=1e-4)
    answers = {"neg": " negative", "pos": " very positive indeed"}
    params = {"prompt": "Review: {text} Sentiment:", "verbalizer": answers, "normalize": "mean"}
    clm = sharpen(load(tiny_gpt2_dir, tiny_csv, "causal-lm", params))
    tok, hf = clm.tokenizer, clm.model.model
    expected = []
    with torch.no_grad():
        for text in TEXTS[:3]:
            ctx = list(tok(f"Review: {text} Sentiment:")["input_ids"])
            row = []
            for a in answers.values():
                ans = own(tok, a)
                logp = hf(torch.tensor([ctx + ans])).logits[0].double().log_softmax(-1)
                row.append(
                    sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(ans)) / len(ans)
                )
            expected.append(row)
    enc = clm.collate(clm.tokenize(TEXTS[:3])[0])
    with torch.no_grad():
        got = clm.scores(enc).double().numpy()
    np.testing.assert_allclose(got, np.asarray(expected), atol=1e-5)
    for adapter in (nli, clm):
        *_, deltas = engine_ig(adapter, TEXTS[:2], "probability")
        for d in deltas["ig"]:
            complete(d["f_input"] - d["f_baseline"] + d["delta"], d["f_input"] - d["f_baseline"])


def test_nli_segment_b_token_types(tiny_nli_dir: Path, tiny_csv: Path, tmp_path: Path) -> None:
    """A BERT-style pair template (hypothesis and its [SEP] of token type 1): the spliced rows
    carry the tokenizer's types, so the scores equal a plain forward on the tokenizer's own pair
    encoding (types included, and they matter), and IG stays complete."""
    import shutil

    from tokenizers import Tokenizer, processors

    folder = tmp_path / "nli-types"
    shutil.copytree(tiny_nli_dir, folder)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )  # fmt: skip
    tok.save(str(folder / "tokenizer.json"))
    adapter = load(folder, tiny_csv, "zero-shot-nli", KINDS["zero-shot-nli"][1])
    assert adapter.model.splice.types and adapter.model.fixed_types.max() == 1
    pairs = full_sequences("zero-shot-nli", adapter.tokenizer, TEXTS[0])
    assert all(1 in types for _, types, _ in pairs)  # the tokenizer's own pair encoding
    enc = adapter.collate(adapter.tokenize(TEXTS)[0])
    sharpen(adapter)
    with torch.no_grad():
        scores = adapter.scores(enc).double().numpy()
        untyped = copy.deepcopy(adapter.model)
        untyped.fixed_types.zero_()
        without = untyped(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits
    np.testing.assert_allclose(
        scores, by_hand("zero-shot-nli", adapter, TEXTS), rtol=1e-5, atol=1e-4
    )
    assert float(np.abs(scores - without.double().numpy()).min()) > 1e-2  # the types matter
    *_, deltas = engine_ig(adapter, TEXTS[:2], "probability")
    assert all(d["relative_delta"] <= 0.05 for d in deltas["ig"])
