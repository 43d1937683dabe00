"""Every model kind against its reference, on tiny real models built in fixtures.

- masked-lm: the label scores equal a hand computation of the verbalizer log-probabilities at
  the mask (the model run on the pattern tokenised as one string); calibration divides by the
  hand-computed content-free mean (Zhao et al. 2021);
- causal-lm: the answer log-likelihoods equal a hand computation token by token, with
  demonstrations drawn as Dataset.sample draws them;
- zero-shot-nli: equals transformers' zero-shot-classification pipeline;
- zero-shot-embedding: equals sentence-transformers' embeddings, cosine / temperature;
- config: unknown kinds and keys, bad patterns and verbalizers fail with the key's path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.config import parse_run_config
from harness.data import load_bundle
from harness.errors import ConfigError
from harness.models.kinds.base import gradient_unavailable, load_kind
from harness.models.sources import resolve

TEXTS = ["A charming and moving film.", "Dull, tedious plot.", "", "[MASK] it was [MASK]", "the " * 80]


def raw_config(model: Path, csv: Path, kind: str, params: dict[str, Any], **model_keys: Any) -> dict[str, Any]:
    return {
        "dataset": {"path": str(csv), "columns": {"id": "id"}, "labels": ["neg", "pos"],
                    "split_fractions": {"train": 0.5, "test": 0.5}},
        "model": {"path": str(model), "kind": kind, "params": params, "max_length": 48, **model_keys},
        "suites": [{"name": "accuracy"}],
    }  # fmt: skip


def load(model: Path, csv: Path, kind: str, params: dict[str, Any]) -> Any:
    config, _ = parse_run_config(raw_config(model, csv, kind, params), source="test")
    bundle = load_bundle(config.dataset)
    return load_kind(config, resolve(config.model, where="model", base_dir=Path.cwd()), bundle), bundle


def softmax(x: Any) -> Any:
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def mlm_by_hand(folder: Path, texts: list[str], words: list[str]) -> Any:
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForMaskedLM.from_pretrained(folder).eval()
    ids = [tok.convert_tokens_to_ids(w) for w in words]
    out = []
    for text in texts:
        enc = tok(f"{text} It was {tok.mask_token}.", return_tensors="pt")
        at = int((enc["input_ids"][0] == tok.mask_token_id).nonzero()[-1])
        with torch.no_grad():
            logp = model(**enc).logits[0, at].double().log_softmax(-1)
        out.append([float(logp[i]) for i in ids])
    return np.asarray(out)


def test_masked_lm_scores_are_the_verbalizer_log_probabilities(tiny_mlm_dir: Path, tiny_csv: Path) -> None:
    adapter, _ = load(tiny_mlm_dir, tiny_csv, "masked-lm", {"verbalizer": {"neg": "bad", "pos": "good"}})
    texts = TEXTS[:2]
    rows, _ = adapter.tokenize(texts)
    import torch

    with torch.no_grad():
        scores = adapter.scores(adapter.collate(rows)).double().numpy()
    expected = mlm_by_hand(tiny_mlm_dir, texts, ["bad", "good"])
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    np.testing.assert_allclose(adapter.predict_proba(texts), softmax(expected), atol=1e-6)
    details = adapter.info().kind_details
    assert details["pattern"] == "{text} It was {mask}." and details["calibration"] is None
    assert gradient_unavailable(adapter) is None  # the spliced module gives gradients (issue 18)


def test_masked_lm_contextual_calibration(tiny_mlm_dir: Path, tiny_csv: Path) -> None:
    params = {"verbalizer": {"neg": "bad", "pos": "good"}, "calibrate": True, "content_free": ["N/A", "nothing"]}
    adapter, _ = load(tiny_mlm_dir, tiny_csv, "masked-lm", params)
    p_cf = softmax(mlm_by_hand(tiny_mlm_dir, ["N/A", "nothing"], ["bad", "good"])).mean(axis=0)
    np.testing.assert_allclose(adapter.info().kind_details["calibration"]["p_cf"], p_cf, atol=1e-6)
    raw = softmax(mlm_by_hand(tiny_mlm_dir, TEXTS[:2], ["bad", "good"]))
    calibrated = raw / p_cf
    np.testing.assert_allclose(adapter.predict_proba(TEXTS[:2]), calibrated / calibrated.sum(1, keepdims=True), atol=1e-6)


def test_masked_lm_hostile_texts_keep_the_mask_where_the_pattern_puts_it(tiny_mlm_dir: Path, tiny_csv: Path) -> None:
    adapter, _ = load(tiny_mlm_dir, tiny_csv, "masked-lm", {"verbalizer": {"neg": "bad", "pos": "good"}})
    probs = adapter.predict_proba(TEXTS)
    assert probs.shape == (len(TEXTS), 2) and np.allclose(probs.sum(1), 1) and np.all(np.isfinite(probs))
    rows, truncated = adapter.tokenize(TEXTS)
    assert truncated[-1] and not truncated[0]
    assert max(len(r) for r in rows) + 6 <= 48  # pattern and special tokens still fit


def causal_by_hand(folder: Path, contexts: list[str], answers: list[str]) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    out = []
    for ctx in contexts:
        row = []
        for answer in answers:
            c, a = tok(ctx)["input_ids"], tok(answer)["input_ids"]
            with torch.no_grad():
                logp = model(torch.tensor([c + a])).logits[0].double().log_softmax(-1)
            row.append(sum(float(logp[len(c) - 1 + j, t]) for j, t in enumerate(a)))
        out.append(row)
    return np.asarray(out)


def test_causal_lm_scores_are_answer_log_likelihoods(tiny_gpt2_dir: Path, tiny_csv: Path) -> None:
    params = {"prompt": "Review: {text} Sentiment:", "verbalizer": {"neg": " negative", "pos": " positive"}}
    adapter, _ = load(tiny_gpt2_dir, tiny_csv, "causal-lm", params)
    expected = causal_by_hand(tiny_gpt2_dir, [f"Review: {t} Sentiment:" for t in TEXTS[:2]], [" negative", " positive"])
    np.testing.assert_allclose(np.log(adapter.predict_proba(TEXTS[:2])), np.log(softmax(expected)), atol=1e-5)


def test_causal_lm_demonstrations_are_a_seeded_sample(tiny_gpt2_dir: Path, tiny_csv: Path) -> None:
    params = {"prompt": "Review: {text} Sentiment:", "verbalizer": {"neg": " negative", "pos": " positive"},
              "demonstrations": 2, "separator": " "}  # fmt: skip
    adapter, bundle = load(tiny_gpt2_dir, tiny_csv, "causal-lm", params)
    demos = bundle.splits["train"].sample(2, 0)
    assert adapter.info().kind_details["demonstration_ids"] == list(demos.ids)
    answer = {0: " negative", 1: " positive"}
    prefix = "".join(f"Review: {t} Sentiment:{answer[y]} " for t, y in zip(demos.texts, demos.labels, strict=True))
    expected = causal_by_hand(tiny_gpt2_dir, [prefix + f"Review: {TEXTS[0]} Sentiment:"], [" negative", " positive"])
    np.testing.assert_allclose(adapter.predict_proba(TEXTS[:1]), softmax(expected), atol=1e-6)


def test_nli_zero_shot_equals_the_transformers_pipeline(tiny_nli_dir: Path, tiny_csv: Path) -> None:
    from transformers import pipeline

    params = {"hypothesis_template": "This review is {}.", "label_words": {"neg": "bad", "pos": "good"}}
    adapter, _ = load(tiny_nli_dir, tiny_csv, "zero-shot-nli", params)
    pipe = pipeline("zero-shot-classification", model=str(tiny_nli_dir), tokenizer=str(tiny_nli_dir), device="cpu")
    for text, probs in zip(TEXTS[:2], adapter.predict_proba(TEXTS[:2]), strict=True):
        out = pipe(text, candidate_labels=["bad", "good"], hypothesis_template="This review is {}.")
        by_label = dict(zip(out["labels"], out["scores"], strict=True))
        np.testing.assert_allclose(probs, [by_label["bad"], by_label["good"]], atol=1e-5)


def test_embedding_zero_shot_equals_sentence_transformers(tiny_encoder_dir: Path, tiny_csv: Path) -> None:
    from sentence_transformers import SentenceTransformer

    params = {"descriptions": {"neg": "a bad film"}, "temperature": 0.1}
    adapter, _ = load(tiny_encoder_dir, tiny_csv, "zero-shot-embedding", params)
    st = SentenceTransformer(str(tiny_encoder_dir), device="cpu")
    labels = st.encode(["a bad film", "a pos review"], normalize_embeddings=True)
    texts = st.encode(TEXTS[:2], normalize_embeddings=True)
    np.testing.assert_allclose(adapter.predict_proba(TEXTS[:2]), softmax(texts @ labels.T / 0.1), atol=1e-5)
    details = adapter.info().kind_details
    assert details["temperature"] == 0.1 and details["temperature_fitted"] is False
    assert adapter.info().training is not None and adapter.info().training.trainable_parameters == 0


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("zero-shot-embeding", {}, r"model\.kind: .*did you mean 'zero-shot-embedding'"),
        ("masked-lm", {"patern": "x"}, r"model\.params\.patern: unknown key \(did you mean 'pattern'\?\)"),
        ("zero-shot-embedding", {"template": "no slot"}, r"model\.params\.template: .*must contain \{label\}"),
        ("zero-shot-embedding", {"temperature": 0}, r"model\.params\.temperature"),
        ("zero-shot-nli", {"hypothesis_template": "no slot"}, r"model\.params\.hypothesis_template"),
    ],
)
def test_bad_kind_config_names_the_key(tiny_csv: Path, tmp_path: Path, kind: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_run_config(raw_config(tmp_path, tiny_csv, kind, params), source="test")


def test_verbalizer_word_must_be_one_token(tiny_mlm_dir: Path, tiny_csv: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.params\.verbalizer\.pos: 'superb' is \d+ tokens"):
        load(tiny_mlm_dir, tiny_csv, "masked-lm", {"verbalizer": {"neg": "bad", "pos": "superb"}})
    with pytest.raises(ConfigError, match=r"model\.params\.verbalizer\.other: 'other' is not a dataset label"):
        load(tiny_mlm_dir, tiny_csv, "masked-lm", {"verbalizer": {"other": "bad"}})
    with pytest.raises(ConfigError, match=r"model\.params\.pattern: the pattern must contain \{text\} and \{mask\}"):
        load(tiny_mlm_dir, tiny_csv, "masked-lm", {"pattern": "{text} only"})


def test_zero_shot_kind_refuses_a_finetune_stage(tiny_model_dir: Path, tiny_csv: Path) -> None:
    raw = raw_config(tiny_model_dir, tiny_csv, "zero-shot-embedding", {})
    raw["model"] = {"kind": "zero-shot-embedding"}
    raw["finetune"] = {"base": {"path": str(tiny_model_dir)}}
    with pytest.raises(ConfigError, match="classifies without training"):
        parse_run_config(raw, source="test")


def test_default_kind_and_params_leave_the_config_digest_alone(tiny_model_dir: Path, tiny_csv: Path) -> None:
    raw = raw_config(tiny_model_dir, tiny_csv, "hf-classifier", {})
    config, _ = parse_run_config(raw, source="test")
    dumped = config.model_dump(mode="json")
    assert "kind" not in dumped["model"] and "params" not in dumped["model"]
    prompted, _ = parse_run_config(raw_config(tiny_model_dir, tiny_csv, "masked-lm", {"pattern": "{text} so {mask}"}), source="t")
    assert prompted.model_dump(mode="json")["model"]["params"] == {"pattern": "{text} so {mask}"}


# ------------------------------------------------------------------ real hub models (network)

HUB_MLM, HUB_CAUSAL = "distilbert/distilbert-base-uncased", "distilbert/distilgpt2"


def load_hub(hub: str, csv: Path, kind: str, params: dict[str, Any]) -> Any:
    raw = raw_config(Path("unused"), csv, kind, params)
    raw["model"].pop("path")
    raw["model"]["hub"] = hub
    config, _ = parse_run_config(raw, source="test")
    bundle = load_bundle(config.dataset)
    found = resolve(config.model, where="model", base_dir=Path.cwd())
    return load_kind(config, found, bundle), found.folder


@pytest.mark.network
def test_hub_masked_lm_scores_are_the_verbalizer_log_probabilities(tiny_csv: Path) -> None:
    """A real WordPiece tokenizer (CLS/SEP added, lower-casing) and pretrained weights."""
    import torch

    words = ["terrible", "great"]
    adapter, folder = load_hub(HUB_MLM, tiny_csv, "masked-lm", {"verbalizer": dict(zip(["neg", "pos"], words, strict=True))})
    rows, _ = adapter.tokenize(TEXTS[:2])
    with torch.no_grad():
        scores = adapter.scores(adapter.collate(rows)).double().numpy()
    np.testing.assert_allclose(scores, mlm_by_hand(folder, TEXTS[:2], words), atol=1e-4)
    probs = adapter.predict_proba(TEXTS)
    assert probs.shape == (len(TEXTS), 2) and np.allclose(probs.sum(1), 1)


@pytest.mark.network
def test_hub_causal_lm_scores_are_answer_log_likelihoods(tiny_csv: Path) -> None:
    """GPT-2's byte-level BPE: the answer's leading space is part of its first token."""
    params = {"prompt": "Review: {text} Sentiment:", "verbalizer": {"neg": " negative", "pos": " positive"}}
    adapter, folder = load_hub(HUB_CAUSAL, tiny_csv, "causal-lm", params)
    expected = causal_by_hand(folder, [f"Review: {t} Sentiment:" for t in TEXTS[:2]], [" negative", " positive"])
    np.testing.assert_allclose(adapter.predict_proba(TEXTS[:2]), softmax(expected), atol=1e-5)
