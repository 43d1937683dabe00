"""Fixture corpus: a small, deterministic sentiment-like dataset and a tokenizer corpus."""

from __future__ import annotations

import random

POSITIVE_WORDS = ["good", "great", "wonderful", "excellent", "charming", "moving", "brilliant", "fun"]
NEGATIVE_WORDS = ["bad", "awful", "boring", "dull", "terrible", "tedious", "weak", "messy"]
NEUTRAL = [
    "the", "film", "movie", "story", "acting", "plot", "was", "is", "a", "an", "and", "but",
    "really", "very", "quite", "director", "cast", "script", "ending", "music", "he", "she",
    "his", "her", "john", "mary", "ahmed", "maria", "wei", "emily", "this", "it", "not",
]


def make_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = rng.sample(NEUTRAL, 5)
        polar = POSITIVE_WORDS if label == "pos" else NEGATIVE_WORDS
        words.insert(rng.randrange(len(words) + 1), rng.choice(polar))
        words.insert(rng.randrange(len(words) + 1), rng.choice(polar))
        rows.append(
            {
                "id": f"ex{i:04d}",
                "text": " ".join(words).capitalize() + ".",
                "label": label,
                "group": rng.choice(["a", "b", "c"]),
            }
        )
    return rows


def tokenizer_corpus() -> list[str]:
    words = POSITIVE_WORDS + NEGATIVE_WORDS + NEUTRAL
    rng = random.Random(1)
    lines = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(400)]
    return lines + [w.capitalize() + "." for w in words]
