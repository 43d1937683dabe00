"""Sub-word tokens to words.

Word boundaries come from the fast tokenizer's ``word_ids()`` (its pre-tokenizer's words: for
BERT's WordPiece, runs of letters/digits and single punctuation marks). Special tokens ([CLS],
[SEP], <s> ...) belong to no word and never receive an attribution. A word's attribution from a
gradient method is the **sum** of its sub-word attributions (so word attributions still add up
to F(x) - F(baseline)); a perturbation method that removes the whole word at once gives every
sub-word the same value, and the word takes that value once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

NO_WORD = -1


@dataclass(frozen=True)
class TokenizedText:
    """One text as the model sees it, with the word each token belongs to."""

    id: str
    ids: tuple[int, ...]  # token ids, special tokens included, truncated to max_length
    word_of_token: tuple[int, ...]  # word index per token; NO_WORD for special tokens
    words: tuple[str, ...]
    truncated: bool

    @property
    def n_words(self) -> int:
        return len(self.words)

    def token_positions(self) -> list[list[int]]:
        """Token positions of each word, in word order."""
        out: list[list[int]] = [[] for _ in self.words]
        for pos, word in enumerate(self.word_of_token):
            if word != NO_WORD:
                out[word].append(pos)
        return out

    def ids_without(self, removed: set[int]) -> list[int]:
        """Token ids with the tokens of the ``removed`` words deleted (special tokens kept)."""
        return [t for t, w in zip(self.ids, self.word_of_token, strict=True) if w not in removed]

    def ids_keeping(self, kept: set[int]) -> list[int]:
        """Token ids keeping only the tokens of the ``kept`` words (and the special tokens)."""
        return [
            t
            for t, w in zip(self.ids, self.word_of_token, strict=True)
            if w == NO_WORD or w in kept
        ]


def tokenize_words(
    tokenizer: Any,
    ids: Sequence[str],
    texts: Sequence[str],
    max_length: int,
    *,
    special_tokens: bool = True,
) -> tuple[list[TokenizedText], bool]:
    """Tokenise ``texts`` as the adapter does (truncated to ``max_length``) and map tokens to words.

    ``special_tokens=False``: the text's own tokens only (no [CLS]/[SEP]), cut to
    ``max_length`` — what the prompted and NLI kinds score, their pattern being added inside the
    model's forward. Returns the items and whether real word boundaries were available; a slow
    (non-fast) tokenizer has no ``word_ids()``, and then every non-special token is its own word.
    """
    texts = list(texts)
    enc = tokenizer(
        texts,
        add_special_tokens=special_tokens,
        truncation=True,
        max_length=max_length,
        return_special_tokens_mask=True,
        return_offsets_mapping=bool(getattr(tokenizer, "is_fast", False)),
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    full = tokenizer(
        texts,
        add_special_tokens=special_tokens,
        truncation=False,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    fast = bool(getattr(tokenizer, "is_fast", False))
    items: list[TokenizedText] = []
    for i, text in enumerate(texts):
        token_ids = [int(t) for t in enc["input_ids"][i]]
        special = enc["special_tokens_mask"][i]
        raw = enc.word_ids(i) if fast else [None if s else p for p, s in enumerate(special)]
        renumber: dict[int, int] = {}
        spans: list[list[int]] = []
        word_of_token: list[int] = []
        for pos, (raw_word, is_special) in enumerate(zip(raw, special, strict=True)):
            if raw_word is None or is_special:
                word_of_token.append(NO_WORD)
                continue
            if raw_word not in renumber:
                renumber[raw_word] = len(renumber)
                spans.append([])
            word_of_token.append(renumber[raw_word])
            spans[renumber[raw_word]].append(pos)
        if fast:
            offsets = enc["offset_mapping"][i]
            words = [text[offsets[s[0]][0] : offsets[s[-1]][1]] for s in spans]
        else:
            words = [str(tokenizer.convert_ids_to_tokens(token_ids[s[0]])) for s in spans]
        items.append(
            TokenizedText(
                id=str(ids[i]),
                ids=tuple(token_ids),
                word_of_token=tuple(word_of_token),
                words=tuple(words),
                truncated=len(full["input_ids"][i]) > len(token_ids),
            )
        )
    return items, fast


def tokenize_for(
    adapter: Any, ids: Sequence[str], texts: Sequence[str]
) -> tuple[list[TokenizedText], bool]:
    """``tokenize_words`` as ``adapter`` encodes a text: an adapter with a ``text_budget``
    (its model splices fixed pieces around the text's own tokens) gets the text's tokens cut to
    that budget, any other the tokenizer's own encoding up to ``max_length``."""
    budget = getattr(adapter, "text_budget", None)
    if isinstance(budget, int):
        return tokenize_words(adapter.tokenizer, ids, texts, budget, special_tokens=False)
    return tokenize_words(adapter.tokenizer, ids, texts, adapter.max_length)


def words_from_tokens(
    token_scores: npt.NDArray[np.float64], item: TokenizedText, *, how: str
) -> list[float]:
    """Word attributions from one example's token attributions (``how``: 'sum' or 'first')."""
    out = [0.0] * item.n_words
    seen = [False] * item.n_words
    for pos, word in enumerate(item.word_of_token):
        if word == NO_WORD:
            continue
        if how == "sum":
            out[word] += float(token_scores[pos])
        elif not seen[word]:
            out[word] = float(token_scores[pos])
        seen[word] = True
    return out


def word_matrix(items: Sequence[TokenizedText], seq_len: int, *, how: str) -> Any:
    """A (batch, max_words, seq_len) torch tensor M with word scores = M @ token scores.

    ``how='sum'`` adds a word's tokens; ``how='mean'`` averages them (the value of a whole-word
    perturbation, which every token of the word carries).
    """
    import torch

    n_words = max((it.n_words for it in items), default=0)
    out = torch.zeros((len(items), max(n_words, 1), seq_len), dtype=torch.float32)
    for b, item in enumerate(items):
        for word, positions in enumerate(item.token_positions()):
            weight = 1.0 if how == "sum" else 1.0 / len(positions)
            out[b, word, positions] = weight
    return out
