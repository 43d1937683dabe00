"""Building model inputs at the token-id level: a tokenizer's special-token template, probed,
and patterns whose pieces are tokenized separately and joined.

Why ids rather than strings: the text can then be truncated to a token budget without cutting
the pattern, the mask or verbalizer position is known by construction (a text that contains
"[MASK]" cannot move it), and every kind gets the same rule. The special tokens a tokenizer adds
(``[CLS] a [SEP]``, ``<s> a </s></s> b </s>``, a BOS, or nothing) are read by encoding a probe
with and without them, so any tokenizer works, including generic fast tokenizers whose
``build_inputs_with_special_tokens`` adds nothing. Departure, recorded by the kinds: pieces are
tokenized separately, so a BPE merge across a piece boundary is not made.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError, ModelError

PROBE_A, PROBE_B = "hello", "world"
MSG_PROBE = "{what}: cannot read the tokenizer's special-token template from a probe encoding"
MSG_FIELDS = "{where}: the pattern must contain {needed} exactly once and no other '{{...}}' fields (got {got})"
PIECES_DEPARTURE = (
    "pattern pieces and the text are tokenized separately and joined as token ids (no BPE merge "
    "across a piece boundary)"
)


def _find(haystack: Sequence[int], needle: Sequence[int], start: int = 0) -> int:
    for i in range(start, len(haystack) - len(needle) + 1):
        if list(haystack[i : i + len(needle)]) == list(needle):
            return i
    return -1


@dataclass(frozen=True)
class SpecialTemplate:
    """``single``: prefix + a + suffix; ``pair``: prefix + a + middle + b + suffix, with the
    token-type id of each region (all zeros for tokenizers without types). The kinds splice
    these pieces around the text inside their model's forward (``spliced.SplicedClassifier``)."""

    single_prefix: tuple[int, ...]
    single_suffix: tuple[int, ...]
    pair_prefix: tuple[int, ...]
    pair_middle: tuple[int, ...]
    pair_suffix: tuple[int, ...]
    type_a: int
    type_b: int
    has_types: bool

    @property
    def single_overhead(self) -> int:
        return len(self.single_prefix) + len(self.single_suffix)

    @property
    def pair_overhead(self) -> int:
        return len(self.pair_prefix) + len(self.pair_middle) + len(self.pair_suffix)

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


def probe_template(tokenizer: Any, what: str) -> SpecialTemplate:
    """Read the template by encoding probes with and without special tokens."""
    a = list(tokenizer(PROBE_A, add_special_tokens=False)["input_ids"])
    b = list(tokenizer(PROBE_B, add_special_tokens=False)["input_ids"])
    single = list(tokenizer(PROBE_A)["input_ids"])
    at = _find(single, a)
    if not a or at < 0:
        raise ModelError(MSG_PROBE.format(what=what))
    pair_enc = tokenizer(PROBE_A, PROBE_B)
    pair = list(pair_enc["input_ids"])
    pa = _find(pair, a)
    pb = _find(pair, b, pa + len(a)) if pa >= 0 else -1
    if pa < 0 or pb < 0:
        raise ModelError(MSG_PROBE.format(what=what))
    types = list(pair_enc.get("token_type_ids") or [0] * len(pair))
    return SpecialTemplate(
        single_prefix=tuple(single[:at]), single_suffix=tuple(single[at + len(a) :]),
        pair_prefix=tuple(pair[:pa]), pair_middle=tuple(pair[pa + len(a) : pb]),
        pair_suffix=tuple(pair[pb + len(b) :]), type_a=int(types[pa]), type_b=int(types[pb]),
        has_types="token_type_ids" in getattr(tokenizer, "model_input_names", []),
    )  # fmt: skip


def pattern_fields(pattern: str, needed: Sequence[str], where: str) -> list[tuple[str, str | None]]:
    """Split ``pattern`` into (literal, field) pieces; each needed field exactly once, no others.
    ``{{`` and ``}}`` are literal braces (str.format rules)."""
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise ConfigError(f"{where}: not a valid pattern ({exc})") from None
    fields = [f for _, f, _, _ in parsed if f is not None]
    if sorted(fields) != sorted(needed):
        shown = ", ".join("{" + f + "}" for f in fields) or "no fields"
        raise ConfigError(MSG_FIELDS.format(where=where, needed=" and ".join("{" + n + "}" for n in needed), got=shown))
    return [(literal, field) for literal, field, _, _ in parsed]


def piece_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a literal piece, no special tokens."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def content_ids(tokenizer: Any, texts: Sequence[str], budget: int) -> tuple[list[list[int]], list[bool]]:
    """Each text's token ids (no special tokens), cut to ``budget`` tokens, and which were cut."""
    rows = tokenizer(list(texts), add_special_tokens=False, return_attention_mask=False)["input_ids"]
    return [list(r[:budget]) for r in rows], [len(r) > budget for r in rows]
