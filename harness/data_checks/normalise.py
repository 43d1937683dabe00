"""Normalised keys for finding the same text twice.

Two texts are exact duplicates when their keys are equal: NFKC, casefolded, Penn Treebank
bracket and quote tokens (``-lrb-``, ``````) dropped, and every character that is not a letter
or digit removed, spaces included. That last step makes the key blind to tokenisation spacing
(``it 's`` and ``it's``, ``do n't`` and ``don't``, ``end .`` and ``end.``), to punctuation and
to case, which is how the same sentence reappears in re-tokenised copies of a corpus. Near
duplicates compare sets of character shingles of the key, so they inherit the same blindness.
"""

from __future__ import annotations

import re
import unicodedata

PTB_TOKENS = re.compile(r"-[lr][rsc]b-|``|''", re.IGNORECASE)
NOT_ALNUM = re.compile(r"[\W_]+")
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def dedup_key(text: str) -> str:
    """The exact-duplicate key of ``text`` (empty for a text without letters or digits)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return NOT_ALNUM.sub("", PTB_TOKENS.sub(" ", folded))


def shingles(key: str, size: int) -> set[str]:
    """Character ``size``-grams of a key; a key shorter than ``size`` is its own shingle."""
    if len(key) <= size:
        return {key} if key else set()
    return {key[i : i + size] for i in range(len(key) - size + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits, with an inner apostrophe: ``don't``)."""
    return WORD.findall(unicodedata.normalize("NFKC", text).casefold().replace("’", "'"))
