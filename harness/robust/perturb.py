"""Search-free perturbations (HELM / CheckList style) that any deployed text model meets.

Each perturbation is a pure function ``(text, rng) -> text``; the rng is seeded per (seed,
perturbation, example id), so a perturbed text never depends on which other examples ran.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable

Perturbation = Callable[[str, random.Random], str]

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_POS = {ch: (r, c) for r, row in enumerate(_ROWS) for c, ch in enumerate(row)}
KEYBOARD_NEIGHBOURS = {
    ch: "".join(
        other
        for other, (r2, c2) in _POS.items()
        if other != ch and abs(r2 - r) <= 1 and abs(c2 - c) <= 1
    )
    for ch, (r, c) in _POS.items()
}

CONTRACTIONS = {
    "do not": "don't",
    "does not": "doesn't",
    "did not": "didn't",
    "is not": "isn't",
    "are not": "aren't",
    "was not": "wasn't",
    "were not": "weren't",
    "have not": "haven't",
    "has not": "hasn't",
    "had not": "hadn't",
    "will not": "won't",
    "would not": "wouldn't",
    "can not": "can't",
    "cannot": "can't",
    "could not": "couldn't",
    "should not": "shouldn't",
    "it is": "it's",
    "that is": "that's",
    "there is": "there's",
    "i am": "i'm",
    "you are": "you're",
    "they are": "they're",
    "we are": "we're",
    "he is": "he's",
    "she is": "she's",
    "let us": "let's",
    "i have": "i've",
    "i will": "i'll",
    "you will": "you'll",
    "what is": "what's",
}
EXPANSIONS = {v: k for k, v in CONTRACTIONS.items() if k != "can not"}

# Common given names across several regions, by CheckList's practice of swapping names for
# names of the same kind; swaps stay within this list.
FIRST_NAMES = (
    "John",
    "Mary",
    "James",
    "Emily",
    "Michael",
    "Sarah",
    "David",
    "Maria",
    "Robert",
    "Linda",
    "Ahmed",
    "Fatima",
    "Wei",
    "Mei",
    "Hiroshi",
    "Yuki",
    "Carlos",
    "Sofia",
    "Kwame",
    "Amara",
    "Ivan",
    "Olga",
    "Raj",
    "Priya",
    "Tom",
    "Anna",
    "Paul",
    "Laura",
    "Peter",
    "Emma",
)
_NAME_SET = {n.lower() for n in FIRST_NAMES}
_WORD = re.compile(r"[A-Za-z]+")


def _match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _pick_words(text: str, rng: random.Random, min_len: int, rate: float) -> list[re.Match[str]]:
    words = [m for m in _WORD.finditer(text) if len(m.group()) >= min_len]
    if not words:
        return []
    k = max(1, round(rate * len(words)))
    return sorted(rng.sample(words, min(k, len(words))), key=lambda m: m.start())


def _edit_words(text: str, matches: list[re.Match[str]], edit: Callable[[str], str]) -> str:
    out, last = [], 0
    for m in matches:
        out += [text[last : m.start()], edit(m.group())]
        last = m.end()
    return "".join([*out, text[last:]])


def keyboard_typo(text: str, rng: random.Random, rate: float = 0.1) -> str:
    """Replace one inner letter of ~10% of words (at least one) with a keyboard neighbour."""

    def edit(word: str) -> str:
        i = rng.randrange(1, len(word) - 1)
        ch = word[i].lower()
        near = KEYBOARD_NEIGHBOURS.get(ch)
        if not near:
            return word
        new = rng.choice(near)
        return word[:i] + (new.upper() if word[i].isupper() else new) + word[i + 1 :]

    return _edit_words(text, _pick_words(text, rng, 3, rate), edit)


def char_swap(text: str, rng: random.Random, rate: float = 0.1) -> str:
    """Swap two adjacent inner letters of ~10% of words (at least one)."""

    def edit(word: str) -> str:
        i = rng.randrange(1, len(word) - 2) if len(word) > 3 else 1
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]

    return _edit_words(text, _pick_words(text, rng, 4, rate), edit)


def lowercase(text: str, rng: random.Random) -> str:
    return text.lower()


def uppercase(text: str, rng: random.Random) -> str:
    return text.upper()


def _replace_phrases(text: str, table: dict[str, str]) -> str:
    keys = sorted(table, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(re.escape(k) for k in keys) + r")\b", re.IGNORECASE)
    return pattern.sub(lambda m: _match_case(m.group(), table[m.group().lower()]), text)


def contract(text: str, rng: random.Random) -> str:
    return _replace_phrases(text, CONTRACTIONS)


def expand(text: str, rng: random.Random) -> str:
    return _replace_phrases(text, EXPANSIONS)


def punctuation_noise(text: str, rng: random.Random) -> str:
    """Drop the final punctuation, or add one of '!', '.', '...' when there is none."""
    stripped = text.rstrip()
    if stripped and stripped[-1] in ".!?":
        return stripped.rstrip(".!?")
    return stripped + rng.choice(["!", ".", "..."])


def whitespace_noise(text: str, rng: random.Random, rate: float = 0.2) -> str:
    """Double ~20% of the spaces (at least one) and add a trailing space."""
    spaces = [m.start() for m in re.finditer(" ", text)]
    if not spaces:
        return text + " "
    chosen = set(rng.sample(spaces, max(1, round(rate * len(spaces)))))
    return "".join(ch + (" " if i in chosen else "") for i, ch in enumerate(text)) + " "


def first_name_swap(text: str, rng: random.Random) -> str:
    """Replace each first name from the list with another one (consistently within the text)."""
    mapping: dict[str, str] = {}

    def edit(m: re.Match[str]) -> str:
        word = m.group()
        key = word.lower()
        if key not in _NAME_SET:
            return word
        if key not in mapping:
            mapping[key] = rng.choice([n for n in FIRST_NAMES if n.lower() != key])
        return _match_case(word, mapping[key])

    return _WORD.sub(edit, text)


PERTURBATIONS: dict[str, Perturbation] = {
    "typo_keyboard": keyboard_typo,
    "typo_swap": char_swap,
    "lowercase": lowercase,
    "uppercase": uppercase,
    "contract": contract,
    "expand": expand,
    "punctuation": punctuation_noise,
    "whitespace": whitespace_noise,
    "first_names": first_name_swap,
}


def perturb(name: str, text: str, *, seed: int, example_id: str) -> str:
    digest = hashlib.sha256(f"{seed}\0{name}\0{example_id}".encode()).digest()
    return PERTURBATIONS[name](text, random.Random(int.from_bytes(digest[:8], "big")))
