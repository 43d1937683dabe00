"""Gradient access for the sentence-encoder kinds (setfit, zero-shot-embedding): ``adapter.model``
is an ``EmbeddingClassifier`` whose logits are the kind's scores — checked against the kind's
own batched prediction path and against a numpy hand computation on the encoder's hidden states
(pooling, normalisation, head, temperature) — and the explain engine's Integrated Gradients on it
equal Captum's own ``LayerIntegratedGradients`` run directly on the wrapper, with completeness
(sum of attributions = F(x) - F(baseline)). Edges: a one-token text, an empty text, a batch of 1,
padding in a batch of different lengths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from harness.explain.attribution import Settings, make_batch, shap_baseline_tokens
from harness.explain.engine import ExplainConfig, Explainer
from harness.explain.faithfulness import RemovalConfig
from harness.explain.sanity import randomised_head_copy
from harness.explain.words import tokenize_words
from harness.models.kinds.base import gradient_unavailable
from harness.models.kinds.embedding_head import EmbeddingClassifier
from tests import kind_loading

TEXTS = ["A charming and moving film.", "good", "", "Dull, tedious plot, and the ending is a mess."]
MAX_LENGTH = 48
KINDS = {
    "setfit": ("tiny_setfit_dir", {}),
    "zero-shot-embedding": ("tiny_encoder_dir", {"temperature": 0.1}),
}


def load(folder: Path, csv: Path, kind: str, params: dict[str, Any]) -> Any:
    return kind_loading.load(folder, csv, kind, params, MAX_LENGTH)


@pytest.fixture(params=sorted(KINDS))
def kind_adapter(request: pytest.FixtureRequest, tiny_csv: Path) -> tuple[str, Path, Any]:
    fixture, params = KINDS[request.param]
    folder = request.getfixturevalue(fixture)
    return request.param, folder, load(folder, tiny_csv, request.param, params)


# ------------------------------------------------------------------ the hand computation
def hidden_states(encoder: Any, tokenizer: Any, text: str) -> np.ndarray:
    """The encoder's last hidden states for the text alone (no padding), as numpy."""
    enc = tokenizer(text, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
    with torch.no_grad():
        out = encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    return out.last_hidden_state[0].double().numpy()


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x)


def logits_by_hand(kind: str, folder: Path, adapter: Any, texts: list[str]) -> np.ndarray:
    """Mean pooling + L2 normalisation (the fixture's modules.json), then the kind's head."""
    from safetensors.numpy import load_file

    encoder, tok = adapter.model.encoder, adapter.tokenizer
    emb = np.stack([unit(hidden_states(encoder, tok, t).mean(axis=0)) for t in texts])
    if kind == "setfit":
        head = load_file(str(folder / "head.safetensors"))
        z = emb @ head["coef"].T + head["intercept"]  # binary: sklearn's [0, x.w + b]
        return np.concatenate([np.zeros_like(z), z], axis=1)
    labels = np.stack(
        [
            unit(hidden_states(encoder, tok, d).mean(axis=0))
            for d in ("a neg review", "a pos review")
        ]
    )
    return np.stack([unit(e) for e in emb]) @ labels.T / 0.1


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_gradient_access_is_declared(kind_adapter: tuple[str, Path, Any]) -> None:
    _, _, adapter = kind_adapter
    assert gradient_unavailable(adapter) is None
    model = adapter.model
    assert isinstance(model, EmbeddingClassifier) and not model.training
    assert model.get_input_embeddings() is model.encoder.get_input_embeddings()
    assert model.config is model.encoder.config and model.device == torch.device("cpu")
    # the record's parameter count is the encoder's, as before the wrapper
    assert adapter.info().n_parameters == sum(p.numel() for p in model.encoder.parameters())


def test_wrapper_logits_equal_the_kind_scores_and_the_hand_computation(
    kind_adapter: tuple[str, Path, Any],
) -> None:
    kind, folder, adapter = kind_adapter
    rows, _ = adapter.tokenize(TEXTS)
    padded = adapter.collate(rows)
    assert len(set(padded.lengths)) > 1  # really padded: different lengths in one batch
    with torch.no_grad():
        wrapped = adapter.model(
            input_ids=padded.input_ids, attention_mask=padded.attention_mask
        ).logits
        with_types = adapter.model(
            input_ids=padded.input_ids, attention_mask=padded.attention_mask,
            token_type_ids=torch.zeros_like(padded.input_ids),
        ).logits  # fmt: skip
        one_by_one = torch.cat([adapter.scores(adapter.collate([r])) for r in rows])
    expected = logits_by_hand(kind, folder, adapter, TEXTS)
    np.testing.assert_allclose(wrapped.double().numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(with_types.double().numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(one_by_one.double().numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(adapter.predict_proba(TEXTS), softmax(expected), atol=1e-6)
    # inputs_embeds gives what input_ids gives (the path the attribution methods take)
    with torch.no_grad():
        embeds = adapter.model.get_input_embeddings()(padded.input_ids)
        by_embeds = adapter.model(inputs_embeds=embeds, attention_mask=padded.attention_mask).logits
    np.testing.assert_allclose(by_embeds.double().numpy(), expected, atol=1e-5)


def test_setfit_embeddings_equal_sentence_transformers(
    tiny_setfit_dir: Path, tiny_csv: Path
) -> None:
    from sentence_transformers import SentenceTransformer

    adapter = load(tiny_setfit_dir, tiny_csv, "setfit", {})
    rows, _ = adapter.tokenize(TEXTS)
    enc = adapter.collate(rows)
    with torch.no_grad():
        ours = adapter.model.embed(input_ids=enc.input_ids, attention_mask=enc.attention_mask)
    st = SentenceTransformer(str(tiny_setfit_dir), device="cpu").encode(TEXTS)
    np.testing.assert_allclose(ours.numpy(), st, atol=1e-5)


def test_wrapper_forward_refuses_ambiguous_inputs(kind_adapter: tuple[str, Path, Any]) -> None:
    model = kind_adapter[2].model
    ids = torch.tensor([[101, 102]])
    with pytest.raises(ValueError, match="exactly one of input_ids and inputs_embeds"):
        model(attention_mask=torch.ones_like(ids))
    with pytest.raises(ValueError, match="exactly one of input_ids and inputs_embeds"):
        model(input_ids=ids, inputs_embeds=model.get_input_embeddings()(ids))
    full = model(input_ids=ids).logits  # no mask: every position is a token
    assert torch.equal(full, model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits)


# ------------------------------------------------------------------ IG against Captum
def explain_config(adapter: Any, output: str) -> ExplainConfig:
    tok = adapter.tokenizer
    return ExplainConfig(
        methods=("ig", "gradient_shap", "ablation"), target="predicted",
        settings=Settings(output=output, n_steps=32, tolerance=0.05), removal=RemovalConfig(),
        baseline_id=int(tok.pad_token_id), shap_tokens=tuple(shap_baseline_tokens(tok)),
        label_names=adapter.label_names, seed=3,
    )  # fmt: skip


def captum_lig(
    model: Any, tok: Any, text: str, target: int, n_steps: int, output: str
) -> tuple[list[float], float]:
    """Captum's LayerIntegratedGradients on the wrapper for the text alone (specials kept, word
    tokens -> pad as the baseline); word sums by the tokenizer's word_ids, and F(x)-F(baseline)."""
    from captum.attr import LayerIntegratedGradients

    enc = tok(
        text,
        truncation=True,
        max_length=MAX_LENGTH,
        return_tensors="pt",
        return_special_tokens_mask=True,
    )
    ids, mask = enc["input_ids"], enc["attention_mask"]
    base = torch.where(
        enc["special_tokens_mask"].bool(), ids, torch.full_like(ids, tok.pad_token_id)
    )

    def forward(i: Any, m: Any) -> Any:
        logits = model(input_ids=i, attention_mask=m).logits
        return logits.softmax(-1) if output == "probability" else logits

    attr = LayerIntegratedGradients(forward, model.get_input_embeddings()).attribute(
        ids, baselines=base, target=target, additional_forward_args=(mask,), n_steps=n_steps
    )
    token = attr.sum(-1)[0].detach().double()
    with torch.no_grad():
        gap = float(forward(ids, mask)[0, target] - forward(base, mask)[0, target])
    word_ids = tok(text, truncation=True, max_length=MAX_LENGTH).word_ids()
    words = [0.0] * (max((w for w in word_ids if w is not None), default=-1) + 1)
    for pos, w in enumerate(word_ids):
        if w is not None:
            words[w] += float(token[pos])
    return words, gap


@pytest.mark.parametrize("output", ["probability", "logit"])
@pytest.mark.parametrize("texts", [TEXTS, ["good"]], ids=["padded-batch", "batch-of-1"])
def test_ig_equals_captum_and_is_complete(
    kind_adapter: tuple[str, Path, Any], output: str, texts: list[str]
) -> None:
    _, _, adapter = kind_adapter
    config = explain_config(adapter, output)
    items, _ = tokenize_words(
        adapter.tokenizer, [f"t{i}" for i in range(len(texts))], texts, MAX_LENGTH
    )
    batch = make_batch(adapter, items, config.baseline_id)
    model = adapter.model
    with torch.no_grad():
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    f_all = out.softmax(-1) if output == "probability" else out
    targets = [int(t) for t in out.argmax(-1)]
    f_x = f_all[torch.arange(len(texts)), targets].double().numpy()
    words, deltas = Explainer(adapter=adapter, config=config).word_attributions(
        model, batch, targets, f_x, check=True
    )
    for i, text in enumerate(texts):
        steps = int(deltas["ig"][i]["n_steps"])
        direct, gap = captum_lig(model, adapter.tokenizer, text, targets[i], steps, output)
        assert len(words["ig"][i]) == len(direct) == items[i].n_words
        np.testing.assert_allclose(words["ig"][i], direct, atol=1e-5)
        if direct:  # completeness, Captum's and ours: the words carry F(x) - F(baseline)
            assert abs(sum(direct) - gap) <= max(0.05 * abs(gap), 1e-3)
            assert deltas["ig"][i]["relative_delta"] <= config.settings.tolerance
        assert np.all(np.isfinite(words["gradient_shap"][i]))


def test_randomised_head_copy_changes_the_head_only(kind_adapter: tuple[str, Path, Any]) -> None:
    kind, _, adapter = kind_adapter
    clone, changed = randomised_head_copy(adapter.model, seed=5)
    assert sorted(changed) == (
        ["head.coef", "head.intercept"] if kind == "setfit" else ["head.labels"]
    )
    for (name, a), (_, b) in zip(
        adapter.model.named_parameters(), clone.named_parameters(), strict=True
    ):
        if name not in changed:
            assert torch.equal(a, b), name
        elif a.dim() >= 2:  # weights redrawn, biases zeroed
            assert not torch.equal(a, b), name
        else:
            assert not b.any(), name
