"""Tiny real models for every model kind, built in fixtures like the tiny BERT: a masked LM, a
causal LM (GPT-2 with a word-level tokenizer that adds no special tokens), an NLI classifier and
a sentence-transformers folder. Random weights, fixed seeds, the same bytes in every session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import build_tiny_bert
from tests.fixtures_text import tokenizer_corpus

NLI_LABELS = ["contradiction", "neutral", "entailment"]


def build_tiny_mlm(folder: Path, *, seed: int = 0) -> Path:
    """The tiny BERT's tokenizer with a BertForMaskedLM of the same size."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    build_tiny_bert(folder, seed=seed)
    config = BertConfig.from_pretrained(folder)
    torch.manual_seed(seed)
    for stale in ("model.safetensors", "labels.json"):
        (folder / stale).unlink()
    BertForMaskedLM(config).save_pretrained(folder, safe_serialization=True)
    return folder


def build_tiny_nli(folder: Path, *, seed: int = 0) -> Path:
    """A tiny BERT pair classifier with NLI labels (contradiction, neutral, entailment)."""
    build_tiny_bert(folder, seed=seed, labels=NLI_LABELS)
    (folder / "labels.json").unlink()
    return folder


def build_tiny_sentence_encoder(folder: Path, *, seed: int = 0, pooling: str = "mean") -> Path:
    """The tiny BERT as a sentence-transformers folder: Transformer, Pooling, Normalize."""
    build_tiny_bert(folder, seed=seed)
    (folder / "labels.json").unlink()
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    flags = {f"pooling_mode_{k}": pooling == k.split("_tok")[0] for k in ("cls_token", "mean_tokens", "max_tokens")}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **flags}))
    (folder / "2_Normalize").mkdir(exist_ok=True)
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64, "do_lower_case": False}))
    return folder


def build_tiny_gpt2(folder: Path, *, seed: int = 0) -> Path:
    """A 2-layer GPT-2 (n_embd 32) with a lower-casing word-level tokenizer, no special tokens
    added to an encoding (as GPT-2's own tokenizer)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    words = sorted({w.strip(".,!?").lower() for line in tokenizer_corpus() for w in line.split()} - {""})
    extra = ["review", "sentiment", "positive", "negative", "pos", "neg", "n/a", "[mask]"]
    vocab_list = ["<|endoftext|>", "<unk>", *".,!?:'\"-/[]", *words, *extra]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(vocab_list))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", eos_token="<|endoftext|>",
        bos_token="<|endoftext|>", pad_token="<|endoftext|>", model_max_length=256,
    )  # fmt: skip
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(vocab), n_embd=32, n_layer=2, n_head=2, n_positions=256)
    GPT2LMHeadModel(config).save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="session")
def tiny_mlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_mlm(tmp_path_factory.mktemp("tiny-mlm") / "model")


@pytest.fixture(scope="session")
def tiny_nli_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_nli(tmp_path_factory.mktemp("tiny-nli") / "model")


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sentence_encoder(tmp_path_factory.mktemp("tiny-st") / "model")


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2") / "model")


def build_tiny_setfit(folder: Path, *, seed: int = 0) -> Path:
    """A setfit-kind folder: the tiny sentence encoder plus a seeded logistic head."""
    import torch
    from safetensors.torch import save_file

    build_tiny_sentence_encoder(folder, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    save_file({"coef": torch.randn(1, 32, generator=gen, dtype=torch.float64) * 3,
               "intercept": torch.zeros(1, dtype=torch.float64),
               "classes": torch.tensor([0, 1])}, str(folder / "head.safetensors"))  # fmt: skip
    (folder / "labels.json").write_text(json.dumps(["neg", "pos"]))
    return folder


@pytest.fixture(scope="session")
def tiny_setfit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_setfit(tmp_path_factory.mktemp("tiny-setfit") / "model")


# Every registered model kind: the fixture that builds its tiny model and its params for the
# registry-wide suite contract (tests/test_suite_contract.py fails for a kind missing here).
KIND_FIXTURES: dict[str, tuple[str, dict[str, object]]] = {
    "hf-classifier": ("tiny_model_dir", {}),
    "zero-shot-embedding": ("tiny_encoder_dir", {"temperature": 0.1}),
    "zero-shot-nli": ("tiny_nli_dir", {}),
    "masked-lm": ("tiny_mlm_dir", {"verbalizer": {"neg": "bad", "pos": "good"}, "calibrate": True}),
    "causal-lm": ("tiny_gpt2_dir", {"verbalizer": {"neg": " negative", "pos": " positive"}, "demonstrations": 1}),
    "setfit": ("tiny_setfit_dir", {}),
}
