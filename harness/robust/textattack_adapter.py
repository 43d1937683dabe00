"""The one module that imports TextAttack, and the set-up it needs.

Importing TextAttack has side effects: it calls ``nltk.download`` for six resources unless the
marker file ``post_install_check_3`` exists in its cache folder, it needs NLTK's stopwords at
import time, it writes ``TOKENIZERS_PARALLELISM`` (and, when ``TA_CACHE_DIR`` is set,
``HF_HOME``, ``XDG_CACHE_HOME``, ``TFHUB_CACHE_DIR``, ``PYTORCH_TRANSFORMERS_CACHE``) into the
environment, ``Attacker`` seeds ``random``/numpy/torch globally, and its logger talks at INFO.
Here we set up what it needs explicitly (a marker in the harness cache, NLTK data paths that
point at verified artifacts, an NLTK downloader that never reaches the network), restore every
environment variable and RNG state it changes, and keep its logger quiet.

Resources that would be downloaded (counter-fitted embeddings, TF-Hub USE, NLTK's tagger) are
substituted while a recipe is built (``substitutes``), so thresholds, stopword lists and search
methods stay exactly the recipe's. Building and running attacks is ``harness.robust.attacks``,
which reaches TextAttack only through ``loaded()``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from harness.artifacts import cache_root
from harness.errors import ConfigError
from harness.robust.resources import AttackResources, PosTagger, SentenceEncoder
from harness.robust.victim import VictimWrapper

MARKER = "post_install_check_3"
_OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
# textattack.shared.utils.install owns the logger TextAttack writes through (its own level, no
# propagation), so the parent "textattack" logger alone would not quiet it.
_QUIET_LOGGERS = ("textattack", "textattack.shared.utils.install", "flair", "stanza", "gensim")
_textattack: ModuleType | None = None

# ----------------------------------------------------------------- containment
@contextlib.contextmanager
def preserved_environment(overrides: dict[str, str] | None = None) -> Iterator[None]:
    """Apply ``overrides``, then put every environment variable back as it was."""
    before = dict(os.environ)
    os.environ.update(overrides or {})
    try:
        yield
    finally:
        for key in set(os.environ) - set(before):
            del os.environ[key]
        for key, value in before.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


@contextlib.contextmanager
def rng_scope(seed: int | None) -> Iterator[None]:
    """Seed random/numpy/torch like TextAttack's ``set_seed`` and restore their states after."""
    import torch

    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    try:
        if seed is not None:
            random.seed(seed)
            np.random.seed(seed)
            torch.manual_seed(seed)
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def _offline_nltk_download(info_or_id: Any = None, *args: Any, **kwargs: Any) -> bool:
    """Stand-in for ``nltk.download``: reports whether the resource is already on the data path,
    never fetches. ``WordSwapWordNet`` asks for 'omw-1.4', which English WordNet does not need."""
    import nltk

    name = str(info_or_id or "")
    for sub in ("corpora", "taggers", "tokenizers"):
        with contextlib.suppress(LookupError):
            nltk.data.find(f"{sub}/{name}")
            return True
    return False


@contextlib.contextmanager
def offline_nltk(resources: AttackResources) -> Iterator[None]:
    """Point NLTK at our artifacts and replace its downloader while TextAttack code runs."""
    import nltk

    for root in (resources.stopwords_root, resources.wordnet_root):
        if str(root) not in nltk.data.path:
            # Kept after the block: WordNet and stopwords load lazily during attacks.
            nltk.data.path.insert(0, str(root))
    original = nltk.download
    nltk.download = _offline_nltk_download
    try:
        yield
    finally:
        nltk.download = original


def quiet_loggers() -> None:
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def textattack_cache_dir() -> Path:
    folder = cache_root() / "textattack"
    folder.mkdir(parents=True, exist_ok=True)
    # The marker tells TextAttack its post-install downloads are done; the resources they would
    # fetch come from the artifact catalog instead.
    (folder / MARKER).touch(exist_ok=True)
    return folder


def loaded() -> ModuleType:
    """The TextAttack module imported by ``load_textattack``."""
    if _textattack is None:
        raise RuntimeError("load_textattack(resources) must run first")
    return _textattack


def load_textattack(resources: AttackResources) -> ModuleType:
    """Import TextAttack once, contained. Returns the module."""
    global _textattack
    if _textattack is not None:
        return _textattack
    env = {"TA_CACHE_DIR": str(textattack_cache_dir()), **_OFFLINE_ENV}
    with (
        preserved_environment(env),
        offline_nltk(resources),
        rng_scope(None),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        import textattack

    quiet_loggers()
    module: ModuleType = textattack
    _textattack = module
    return module


# ----------------------------------------------------------------- substitutes
def reopen_inherited_corpus_files() -> None:
    """In a forked worker: drop the WordNet file handles inherited from the parent.

    NLTK's WordNet reader keeps its data files open and seeks before each read. A forked child
    shares the parent's open file descriptions, offsets included, so two workers seeking and
    reading at once read each other's lines ("No WordNet synset found ... at offset", then a
    crash in the attack). Each worker must open its own.
    """
    import sys

    corpus = sys.modules.get("nltk.corpus")
    reader = getattr(corpus, "wordnet", None) if corpus is not None else None
    files = getattr(reader, "_data_file_map", None) if type(reader).__name__ != "LazyCorpusLoader" else None
    if isinstance(files, dict):
        for handle in files.values():
            handle.close()  # closes this process's descriptor only
        files.clear()


def _wordnet_antonyms(word: str) -> set[str]:
    from nltk.corpus import wordnet

    return {
        antonym.name().lower()
        for synset in wordnet.synsets(word)
        for lemma in synset.lemmas()
        for antonym in lemma.antonyms()
    }


def victim_vocabulary(victim: VictimWrapper) -> tuple[list[str], Any]:
    """Whole-word vocabulary tokens of the victim and their input-embedding rows (numpy)."""
    tokenizer = getattr(victim.adapter, "tokenizer", None)
    model = getattr(victim.adapter, "model", None)
    if tokenizer is None or model is None:
        raise ConfigError("robustness: word-swap embedding recipes need a torch model adapter (HF)")
    special = set(getattr(tokenizer, "all_special_tokens", []))
    vocab = tokenizer.get_vocab()
    pairs = sorted(
        (idx, tok)
        for tok, idx in vocab.items()
        if tok not in special and tok.isalpha() and tok.isascii() and len(tok) > 1
    )
    weights = model.get_input_embeddings().weight.detach().cpu().numpy()
    ids = [i for i, _ in pairs]
    return [t for _, t in pairs], np.asarray(weights[ids], dtype=np.float32)


def make_word_embedding(victim: VictimWrapper) -> Any:
    """A TextAttack ``WordEmbedding`` over the victim's whole-word input embeddings whose
    nearest neighbours exclude WordNet antonyms (embedding neighbours of 'good' include 'bad')."""
    from textattack.shared import WordEmbedding

    words, matrix = victim_vocabulary(victim)

    class VictimWordEmbedding(WordEmbedding):  # type: ignore[misc]
        def nearest_neighbours(self, index: Any, topn: int) -> list[int]:
            if isinstance(index, str):
                index = self._word2index[index]
            if index in self._nn_cache:
                return list(self._nn_cache[index][:topn])
            dist = np.linalg.norm(self.embedding_matrix - self.embedding_matrix[index], axis=1)
            order = np.argsort(dist, kind="stable")
            antonyms = _wordnet_antonyms(self._index2word[index])
            nn = [int(j) for j in order if j != index and self._index2word[int(j)] not in antonyms]
            self._nn_cache[index] = nn[: max(topn, 64)]
            return nn[:topn]

    return VictimWordEmbedding(
        embedding_matrix=matrix,
        word2index={w: i for i, w in enumerate(words)},
        index2word=dict(enumerate(words)),
    )


def make_sentence_encoder_class(encoder: SentenceEncoder) -> type:
    from textattack.constraints.semantics.sentence_encoders import (
        SentenceEncoder as TASentenceEncoder,
    )

    class NumpyUniversalSentenceEncoder(TASentenceEncoder):  # type: ignore[misc]
        """Same signature as TextAttack's ``UniversalSentenceEncoder``; encodes with USE-m v3."""

        def __init__(
            self,
            threshold: float = 0.8,
            large: bool = False,
            metric: str = "angular",
            **kwargs: Any,
        ) -> None:
            super().__init__(threshold=threshold, metric=metric, **kwargs)
            self.large = large

        def encode(self, sentences: Sequence[str]) -> Any:
            return encoder.encode(list(sentences))

    return NumpyUniversalSentenceEncoder


def make_pos_class(tagger: PosTagger) -> type:
    from textattack.constraints.grammaticality import PartOfSpeech

    class PatternPartOfSpeech(PartOfSpeech):  # type: ignore[misc]
        """``PartOfSpeech`` with the universal tags from pattern's tagger."""

        def _get_pos(self, before_ctx: list[str], word: str, after_ctx: list[str]) -> str:
            words = [*before_ctx, word, *after_ctx]
            key = " ".join(words)
            if key in self._pos_tag_cache:
                tags = self._pos_tag_cache[key]
            else:
                tags = tagger.tag(words)
                self._pos_tag_cache[key] = tags
            return str(tags[len(before_ctx)])

    return PatternPartOfSpeech


@contextlib.contextmanager
def _patched(target: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, original)


@contextlib.contextmanager
def substitutes(
    module: ModuleType,
    victim: VictimWrapper,
    resources: AttackResources,
    *,
    embedding_kind: str | None = "counter-fitted",
) -> Iterator[None]:
    """While a recipe builds: our embeddings (counter-fitted GloVe, or the victim's own for the
    '-victim' variants), sentence encoder, POS tagger and homoglyph table in place of the
    downloads and files TextAttack would need."""
    from textattack.shared import WordEmbedding

    from harness.robust import wordvectors

    stack = contextlib.ExitStack()
    with stack:
        needs_embedding = "WordSwapEmbedding" in vars(module) or "WordEmbeddingDistance" in vars(
            module
        )
        if needs_embedding:
            embedding = (
                make_word_embedding(victim)
                if embedding_kind == "victim"
                else wordvectors.counterfitted_embedding()
            )
            stack.enter_context(
                _patched(
                    WordEmbedding, "counterfitted_GLOVE_embedding", staticmethod(lambda: embedding)
                )
            )
        if "UniversalSentenceEncoder" in vars(module):
            cls = make_sentence_encoder_class(SentenceEncoder(resources.encoder_dir))
            stack.enter_context(_patched(module, "UniversalSentenceEncoder", cls))
        if "PartOfSpeech" in vars(module):
            stack.enter_context(
                _patched(module, "PartOfSpeech", make_pos_class(PosTagger(resources.tagger_dir)))
            )
        if "WordSwapHomoglyphSwap" in vars(module):
            stack.enter_context(wordvectors.homoglyph_file_redirect())
        # Stopwords need no substitute: NLTK's reader finds corpora/stopwords/english in our
        # artifact on the data path (recipes with their own list, like TextFooler, keep it).
        yield
