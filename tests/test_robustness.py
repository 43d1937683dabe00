"""Robustness suite: TextAttack recipes, offline, checked against TextAttack's own Attacker."""

from __future__ import annotations

import logging
import os
import random
import shutil
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from harness.data import Dataset
from harness.models.hf import HFClassifier
from harness.store import ExampleLog
from harness.suites.base import SuiteContext
from harness.suites.robustness import RobustnessParams, RobustnessSuite, recipe_status
from tests.fixtures_text import make_rows

COMPARED = (
    "result",
    "perturbed_text",
    "original_pred",
    "perturbed_pred",
    "queries",
    "words_perturbed_pct",
)


def train_tiny(src: Path, dst: Path, steps: int = 60) -> Path:
    """The fixture BERT trained a little on the fixture corpus: attacks get something to flip."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    shutil.copytree(src, dst)
    tok = AutoTokenizer.from_pretrained(dst)
    model = AutoModelForSequenceClassification.from_pretrained(dst)
    rows = make_rows(120, seed=1)
    texts, labels = (
        [r["text"] for r in rows],
        torch.tensor([int(r["label"] == "pos") for r in rows]),
    )
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        idx = torch.arange(step * 16, step * 16 + 16) % len(rows)
        enc = tok([texts[i] for i in idx], padding=True, return_tensors="pt")
        loss = model(**enc, labels=labels[idx]).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(dst, safe_serialization=True)
    return dst


@pytest.fixture(scope="module")
def victim_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> HFClassifier:
    folder = train_tiny(tiny_model_dir, tmp_path_factory.mktemp("trained") / "model")
    return HFClassifier.load(folder, name="tiny-trained", source="path", max_length=32)


@pytest.fixture(scope="module")
def data() -> Dataset:
    rows = make_rows(60, seed=7)
    return Dataset(
        name="fixture",
        split="test",
        ids=tuple(r["id"] for r in rows),
        texts=tuple(r["text"] for r in rows),
        labels=tuple(int(r["label"] == "pos") for r in rows),
        label_names=("neg", "pos"),
    )


def run_suite(
    model: Any, data: Dataset, folder: Path, *, workers: int = 1, **params: Any
) -> tuple[Any, dict[str, Any]]:
    log = ExampleLog(folder / "examples" / "robustness.jsonl").open()
    try:
        ctx = SuiteContext(
            seed=0,
            run_dir=folder,
            examples=log,
            logger=logging.getLogger("test"),
            predictions=lambda: None,
            workers=workers,
        )
        outcome = RobustnessSuite(params=RobustnessParams(**params)).run(model, data, ctx)
        return outcome, dict(log.done)
    finally:
        log.close()


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Any]:
    """Every socket connection attempt fails at once (and is recorded); no hub folder exists."""
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "no-hub"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hub" / "hub"))
    return attempts


def _without_timing(rows: dict[str, Any]) -> dict[str, Any]:
    return {k: {f: v for f, v in r.items() if f != "seconds"} for k, r in rows.items()}


class ReferenceVictim:
    """TextAttack's ModelWrapper interface straight over the model's own predictions."""

    def __init__(self, model: HFClassifier) -> None:
        self.model = model.model
        self.adapter = model  # where the '-victim' recipes read the input-embedding matrix
        self._predict = model.predict_proba

    def __call__(self, texts: list[str]) -> Any:
        return self._predict([str(t) for t in texts])


@pytest.mark.parametrize("recipe", ["pwws", "deepwordbug", "textfooler", "textfooler-victim", "textbugger"])
def test_outcomes_equal_textattack_attacker(
    recipe: str, victim_model: HFClassifier, data: Dataset, tmp_path: Path
) -> None:
    from harness.robust import attacks
    from harness.robust.engine import example_seed
    from harness.robust.resources import AttackResources
    outcome, rows = run_suite(
        victim_model,
        data,
        tmp_path,
        recipes=[recipe],
        n_examples=6,
        query_budget=None,
        time_budget_s=None,
        validity=False,
    )
    sample = data.sample(6, 0)
    resources = AttackResources.fetch()
    kinds = set()
    for eid, text, label in zip(sample.ids, sample.texts, sample.labels, strict=True):
        ours = rows[f"{recipe}:{eid}"]
        # The reference: TextAttack's own recipe class and its own Attacker, fresh for every
        # example, asking the model directly (ReferenceVictim: no caching, deduplication,
        # first-query batching or deadlines, which is what the suite adds); only the offline
        # resources are substituted. The forward itself is the model's, as in the suite: a
        # different float path (TextAttack's stock wrapper pads every query to 512 tokens)
        # flips near-tied word choices and would test float noise, not the search.
        victim = ReferenceVictim(victim_model)
        attack = attacks.build_attack(recipe, victim, resources, query_budget=None)
        theirs = attacks.attacker_run(
            attack, text, label, seed=example_seed(0, recipe, eid), query_budget=None
        )
        assert {k: ours[k] for k in COMPARED} == {k: theirs[k] for k in COMPARED}, eid
        np.testing.assert_allclose(ours["scores_after"], theirs["scores_after"], rtol=1e-6)
        kinds.add(ours["result"])
    assert "succeeded" in kinds  # the comparison covers real perturbations, not only skips
    assert outcome.details["recipes"][recipe]["n"] == 6


def test_offline_parallel_matches_sequential(
    victim_model: HFClassifier, data: Dataset, tmp_path: Path, no_network: list[Any]
) -> None:
    env_before = dict(os.environ)
    random.seed(123)
    state = random.getstate()
    params = dict(
        recipes=["pwws", "deepwordbug", "pruthi", "textfooler"], n_examples=4, time_budget_s=60
    )
    par, par_rows = run_suite(victim_model, data, tmp_path / "par", workers=2, **params)
    seq, seq_rows = run_suite(victim_model, data, tmp_path / "seq", workers=1, **params)
    assert no_network == []
    assert dict(os.environ) == env_before  # TextAttack's env writes were undone
    assert random.getstate() == state  # and its seeding did not leak
    assert logging.getLogger("textattack.shared.utils.install").level >= logging.WARNING
    assert _without_timing(par_rows) == _without_timing(seq_rows)
    assert len(par_rows) == 16 and list(par.example_order or []) == list(seq.example_order or [])
    names = {m.name for m in par.metrics}
    for recipe in params["recipes"]:
        for suffix in (
            "clean_accuracy",
            "accuracy_under_attack",
            "attack_success_rate",
            "succeeded",
            "failed",
            "skipped",
            "words_perturbed_pct.mean",
            "queries.mean",
            "similarity.mean",
        ):
            assert f"{recipe}.{suffix}" in names
    asr = next(m for m in par.metrics if m.name == "pwws.attack_success_rate")
    counts = par.details["recipes"]["pwws"]
    assert asr.value == pytest.approx(counts["succeeded"] / (counts["n"] - counts["skipped"]))
    assert asr.ci_low is not None and asr.ci_low <= asr.value <= asr.ci_high  # type: ignore[operator]
    assert {r.name for r in par.resources} >= {"wordnet-3.0", "stopwords-en", "use-multilingual-v3"}
    assert any("counter-fitted" in d for d in par.departures)
    succeeded = [r for r in par_rows.values() if r["result"] == "succeeded"]
    assert succeeded and all(0 < r["angular_similarity"] <= 1 for r in succeeded)


def test_resume_skips_finished_examples(
    victim_model: HFClassifier, data: Dataset, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="test")
    _first, rows = run_suite(victim_model, data, tmp_path, recipes=["deepwordbug"], n_examples=5)
    _again, rows_again = run_suite(
        victim_model, data, tmp_path, recipes=["deepwordbug", "pruthi"], n_examples=5
    )
    attacked = [r.getMessage() for r in caplog.records if "pairs in this invocation" in r.getMessage()]
    assert attacked == [  # the second call attacked only pruthi's 5
        "robustness: attacked 5 (recipe, example) pairs in this invocation",
        "robustness: attacked 5 (recipe, example) pairs in this invocation",
    ]
    assert all(rows_again[k] == v for k, v in rows.items())
    lines = (tmp_path / "examples" / "robustness.jsonl").read_text().splitlines()
    assert len(lines) == 10


def test_time_budget_records_timeouts(
    victim_model: HFClassifier, data: Dataset, tmp_path: Path
) -> None:
    outcome, rows = run_suite(
        victim_model, data, tmp_path, recipes=["pwws"], n_examples=3, time_budget_s=1e-9
    )
    assert {r["result"] for r in rows.values()} == {"timed_out"}
    assert outcome.details["recipes"]["pwws"]["timed_out"] == 3
    assert any("time budget" in w for w in outcome.warnings)


def test_params_reject_recipes_that_cannot_run() -> None:
    with pytest.raises(ValidationError, match="cannot run here: needs the bert-base-uncased"):
        RobustnessParams(recipes=["bae"])
    with pytest.raises(ValidationError, match="did you mean 'pwws'"):
        RobustnessParams(recipes=["pwwss"])
    status = recipe_status()
    assert {n for n, why in status.items() if why is None} >= {
        "pwws",
        "deepwordbug",
        "pruthi",
        "textfooler",
        "textfooler-victim",
        "textbugger",  # runnable since the unicode-homoglyphs artifact stands in for the table
    }


def test_wordnet_artifact_is_readable_by_nltk() -> None:
    from harness.robust.resources import AttackResources
    from harness.robust.textattack_adapter import load_textattack

    resources = AttackResources.fetch()
    load_textattack(resources)
    from nltk.corpus import stopwords, wordnet

    assert "good" in {lemma.name() for s in wordnet.synsets("good") for lemma in s.lemmas()}
    assert "bad" in {
        a.name() for s in wordnet.synsets("good") for lemma in s.lemmas() for a in lemma.antonyms()
    }
    assert "the" in stopwords.words("english") and len(stopwords.words("english")) == len(
        resources.stopwords()
    )
    assert (Path(resources.wordnet_root) / "corpora" / "wordnet" / "data.noun").read_bytes().count(
        b"\r"
    ) == 0


def _lookup_many(words: list[str]) -> int:
    from nltk.corpus import wordnet

    missing = 0
    for _ in range(20):
        for word in words:
            missing += sum(s is None for s in wordnet.synsets(word))
    return missing


def test_forked_workers_read_wordnet_through_their_own_files() -> None:
    """Regression: workers inherited the parent's open WordNet files and read each other's lines."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from harness.robust.engine import _worker_init
    from harness.robust.resources import AttackResources
    from harness.robust.textattack_adapter import load_textattack

    load_textattack(AttackResources.fetch())
    from nltk.corpus import wordnet

    words = ["good", "bad", "extraordinary", "film", "dull", "great", "boring", "run", "light", "fast"]
    assert _lookup_many(words[:2]) == 0  # the parent now holds the data files open
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("fork"), initializer=_worker_init) as pool:
        missing = sum(pool.map(_lookup_many, [words] * 8))
    assert missing == 0
    assert wordnet.synsets("extraordinary")[0] is not None


@pytest.mark.parametrize("recipe", ["pwws", "deepwordbug"])
def test_first_queries_are_what_the_search_asks_first(
    recipe: str, victim_model: HFClassifier, data: Dataset
) -> None:
    """The texts warmed across examples before the searches start are the texts the searches
    then ask for: the word-importance pass, in the search's own order."""
    from harness.robust import attacks
    from harness.robust.resources import AttackResources
    from harness.robust.victim import VictimWrapper

    class Recording(VictimWrapper):
        def __init__(self, model: HFClassifier) -> None:
            super().__init__(model, cache=False)
            self.calls: list[list[str]] = []

        def __call__(self, text_list: Any) -> Any:
            self.calls.append([str(t) for t in text_list])
            return super().__call__(text_list)

    resources = AttackResources.fetch()
    victim = Recording(victim_model)
    attack = attacks.build_attack(recipe, victim, resources, query_budget=None)
    sample = data.sample(8, 0)
    checked = 0
    for text, label in zip(sample.texts, sample.labels, strict=True):
        if int(victim_model.predict_proba([text])[0].argmax()) != label:
            continue  # skipped by the attack: nothing is asked
        expected = attacks.first_queries(attack, text)
        assert expected and len(set(expected)) == len(expected)
        victim.calls.clear()
        attacks.attack_example(attack, victim, text, label, seed=1, time_budget_s=None)
        asked = [t for call in victim.calls for t in call]
        assert asked[0] == text  # the goal function's initial result
        assert asked[1 : 1 + len(expected)] == expected
        checked += 1
    assert checked >= 3
