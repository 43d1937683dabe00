"""Adversarial fine-tuning (``finetune.adversarial``): the embedding-space loss against a
hand computation, attack augmentation on a real tiny model (slots, per-epoch attack files,
model card), both cached, and a resumed attack fine-tune re-attacking nothing it finished."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from harness.config import AdversarialConfig
from harness.errors import ConfigError
from harness.models.finetune import adversarial
from harness.models.finetune.adversarial_torch import embedding_adversarial_loss, project
from harness.models.finetune.training import FinetuneInterrupted
from harness.robust.augment import TextAttackAugmenter
from tests.test_finetune import FAST, _raise_at, finetune, make_raw

ATTACK = {"method": "attack", "recipe": "deepwordbug", "warmup_epochs": 1, "ratio": 0.25,
          "query_budget": 60, "time_budget_s": 5, "workers": 1}  # fmt: skip


def _batch(model_dir: Path) -> tuple[Any, dict[str, Any]]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()  # no dropout
    enc = tok(["a good film", "bad and dull plot here"], padding=True, return_tensors="pt")
    return model, {**enc, "labels": torch.tensor([1, 0])}


def test_fgm_loss_is_the_loss_at_the_normalised_gradient_step(tiny_model_dir: Path) -> None:
    model, inputs = _batch(tiny_model_dir)
    adv = AdversarialConfig(method="fgm", epsilon=0.5)
    ours = embedding_adversarial_loss(model, inputs, adv)
    # By hand: the gradient of the clean loss at the word embeddings, zeroed on padding, scaled
    # to L2 length epsilon per example; the loss there added to the clean loss.
    rest = {k: v for k, v in inputs.items() if k != "input_ids"}
    emb = model.get_input_embeddings()(inputs["input_ids"]).detach().requires_grad_(True)
    clean = model(inputs_embeds=emb, **rest).loss
    (g,) = torch.autograd.grad(clean, emb)
    g = g * inputs["attention_mask"].unsqueeze(-1)
    delta = torch.stack([0.5 * gi / gi.norm() for gi in g])
    expected = clean + model(inputs_embeds=emb + delta, **rest).loss
    assert float(ours) == pytest.approx(float(expected), rel=1e-5)
    assert float(ours) > 2 * float(clean) - 1e-6  # the ascent step does not lower the loss


def test_pgd_perturbation_stays_on_the_ball(tiny_model_dir: Path) -> None:
    d = torch.randn(3, 4, 5) * 10
    out = project(d, 2.0)
    assert torch.allclose(out.flatten(1).norm(dim=1), torch.full((3,), 2.0), atol=1e-5)
    small = torch.full((1, 2, 2), 0.1)
    assert torch.equal(project(small, 2.0), small)  # inside the ball: unchanged
    model, inputs = _batch(tiny_model_dir)
    loss = embedding_adversarial_loss(
        model, inputs, AdversarialConfig(method="pgd", epsilon=0.5, alpha=0.2, steps=2)
    )
    assert torch.isfinite(loss) and loss.requires_grad


def test_embedding_methods_are_cached_with_their_card(
    tiny_model_dir: Path, tiny_csv: Path, tmp_path: Path
) -> None:
    plain, _ = finetune(make_raw(tiny_model_dir, tiny_csv), tmp_path)
    raw = make_raw(tiny_model_dir, tiny_csv, adversarial={"method": "fgm", "epsilon": 0.5})
    first, _ = finetune(raw, tmp_path)
    assert not first.cache_hit and first.digest != plain.digest
    card = first.model_card["adversarial"]
    assert card["method"] == "fgm" and card["parameters"]["epsilon"] == 0.5
    assert card["departures"] == [adversarial.EMBEDDING_DEPARTURES["fgm"]]
    again, _ = finetune(raw, tmp_path)
    assert again.cache_hit and again.digest == first.digest


class CountingAugmenter(TextAttackAugmenter):
    """The real attack engine, counting the example ids it is asked to attack."""

    asked: ClassVar[list[str]] = []

    def attack(self, model: Any, examples: Any, **kw: Any) -> None:
        CountingAugmenter.asked += [eid for eid, _, _ in examples]
        super().attack(model, examples, **kw)


@pytest.fixture()
def counting(monkeypatch: pytest.MonkeyPatch) -> type[CountingAugmenter]:
    CountingAugmenter.asked = []
    monkeypatch.setattr(adversarial, "augmenter", CountingAugmenter)
    return CountingAugmenter


def test_attack_augmentation_resumes_without_re_attacking(
    tiny_model_dir: Path, tiny_csv: Path, tmp_path: Path, counting: type[CountingAugmenter]
) -> None:
    raw = make_raw(tiny_model_dir, tiny_csv, adversarial=ATTACK, save_steps=4)
    whole, _ = finetune(raw, tmp_path / "whole")
    card = whole.model_card["adversarial"]
    n_train = whole.model_card["data"]["train"]["n"]
    m = round(0.25 * n_train)
    assert card["slots"] == m and card["method"] == "attack" and card["engine"] == "textattack"
    epochs = card["epochs"]
    assert epochs and epochs[0]["epoch"] == 1  # epoch 0 is the clean warm-up
    for e in epochs:
        assert e["attacked"] == m and e["added"] == e["succeeded"]
        assert e["succeeded"] + e["failed"] + e["skipped"] + e["timed_out"] == m
    files = sorted(p.name for p in (whole.checkpoint / adversarial.FOLDER).glob("*.jsonl"))
    assert files == [f"epoch-{e['epoch']}.jsonl" for e in epochs]
    attacked_whole = list(counting.asked)
    assert len(attacked_whole) == m * len(epochs)

    counting.asked = []
    steps = FAST["max_steps"]
    with pytest.raises(FinetuneInterrupted):
        finetune(raw, tmp_path / "cut", callbacks=[_raise_at(steps - 3)])
    before = len(counting.asked)
    resumed, _ = finetune(raw, tmp_path / "cut")
    # Only attacks of epochs that had not started are made again after the resume; the epoch in
    # progress reads its file. The same attacks, hence the same weights, as the whole run.
    assert len(counting.asked) - before <= m
    assert sorted(counting.asked) == sorted(attacked_whole)
    assert resumed.model_card["adversarial"]["epochs"] == epochs
    assert resumed.digest == whole.digest


def test_bad_adversarial_settings_fail_before_training(
    tiny_model_dir: Path, tiny_csv: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="did you mean 'deepwordbug'"):
        finetune(
            make_raw(tiny_model_dir, tiny_csv, adversarial={**ATTACK, "recipe": "deepwordbig"}),
            tmp_path,
        )
    with pytest.raises(ConfigError, match="not a parameter of method 'fgm'"):
        finetune(
            make_raw(tiny_model_dir, tiny_csv, adversarial={"method": "fgm", "steps": 3}), tmp_path
        )
    with pytest.raises(ConfigError, match="raise the ratio"):
        finetune(
            make_raw(tiny_model_dir, tiny_csv, adversarial={**ATTACK, "ratio": 0.001}), tmp_path
        )
    assert not (tmp_path / "finetune").exists() or not any(
        (tmp_path / "finetune").rglob("*.safetensors")
    )
