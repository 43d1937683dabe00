"""Shared fixtures: a tiny real BERT classifier and tokenizer, and a small dataset on disk."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from tests.fixtures_text import make_rows, tokenizer_corpus

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LABELS = ["neg", "pos"]


def build_tiny_bert(folder: Path, *, seed: int = 0, labels: list[str] | None = None) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with a WordPiece tokenizer trained here."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    labels = labels or LABELS
    folder.mkdir(parents=True, exist_ok=True)
    # A fixed vocabulary instead of a trained one: the WordPiece trainer is not reproducible
    # across processes (ties broken in parallel), and the fixture model must be the same bytes
    # in every test session and subprocess.
    words = sorted({w.strip(".,!?").lower() for line in tokenizer_corpus() for w in line.split()} - {""})
    chars = sorted({c for w in words for c in w} | set("abcdefghijklmnopqrstuvwxyz0123456789.,!?'\"-"))
    vocab_list = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars), *words]
    vocab = {tok_: i for i, tok_ in enumerate(dict.fromkeys(vocab_list))}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=fast.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
    )
    model = BertForSequenceClassification(config)
    model.save_pretrained(folder, safe_serialization=True)
    (folder / "labels.json").write_text(json.dumps(labels))
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert") / "model")


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("data") / "reviews.csv", make_rows(120))


@pytest.fixture()
def tiny_run_file(tmp_path: Path, tiny_model_dir: Path, tiny_csv: Path) -> Path:
    """A run file evaluating the tiny model on the tiny CSV with the accuracy suite."""
    run = tmp_path / "run.yaml"
    run.write_text(
        f"""
name: tiny
seed: 0
threads: 1
output_dir: {tmp_path / 'reports'}
dataset:
  path: {tiny_csv}
  columns: {{id: id, text: text, label: label, groups: [group]}}
  labels: [neg, pos]
  split_fractions: {{train: 0.5, test: 0.5}}
model:
  path: {tiny_model_dir}
  max_length: 32
  batch_size: 16
suites:
  - name: accuracy
    params: {{n_bootstrap: 200}}
""",
        encoding="utf-8",
    )
    return run


# Tiny models of the other model kinds (masked LM, causal LM, NLI, sentence encoder, SetFit).
from tests.fixtures_kinds import *  # noqa: E402,F403
