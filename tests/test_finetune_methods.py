"""The PEFT family, few-shot draws and SetFit in the fine-tuning stage, on tiny fixture models
(each fine-tune a few seconds): trainable parameters equal peft's own count, a saved checkpoint
reloads to the trained model's logits (merged or re-applied adapter), K-shot draws are seeded and
recorded, SetFit's saved head predicts as setfit's own model does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.config import parse_run_config
from harness.errors import ConfigError, DataError
from harness.models.finetune.prep import draw_shots
from harness.models.hf import HFClassifier
from tests.test_finetune import callback, finetune, make_raw

PEFT = {
    "adalora": {"init_r": 4, "target_r": 2, "delta_t": 1, "tinit_ratio": 0.1, "tfinal_ratio": 0.2},
    "ia3": {},
    "prompt_tuning": {"num_virtual_tokens": 3},
    "prefix_tuning": {"num_virtual_tokens": 3},
}


def peft_reference_count(model_dir: Path, method: str, params: dict[str, Any]) -> int:
    """Trainable parameters by peft itself, for the same config built here."""
    import peft
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    task = peft.TaskType.SEQ_CLS
    config = {
        "adalora": lambda: peft.AdaLoraConfig(task_type=task, init_r=4, target_r=2, target_modules=["query", "value"], total_step=10),
        "ia3": lambda: peft.IA3Config(task_type=task),
        "prompt_tuning": lambda: peft.PromptTuningConfig(task_type=task, num_virtual_tokens=3),
        "prefix_tuning": lambda: peft.PrefixTuningConfig(task_type=task, num_virtual_tokens=3),
    }[method]()
    trainable, _ = peft.get_peft_model(model, config).get_nb_trainable_parameters()
    return int(trainable)


@pytest.mark.parametrize("method", sorted(PEFT))
def test_peft_method_trains_saves_and_reloads(method: str, tiny_model_dir: Path, tiny_csv: Path, tmp_path: Path) -> None:
    import torch

    seen: dict[str, Any] = {}
    probe = ["a great and charming film", "dull"]

    def on_train_end(self: Any, args: Any, state: Any, control: Any, model: Any = None, processing_class: Any = None, **kw: Any) -> None:
        enc = processing_class(probe, padding=True, return_tensors="pt")
        model.eval()
        with torch.no_grad():
            seen["logits"] = model(**enc).logits.double().numpy()
        seen["rank_pattern"] = getattr(model.peft_config["default"], "rank_pattern", None)

    raw = make_raw(tiny_model_dir, tiny_csv, method=method, params=PEFT[method], max_steps=10, dev_split=None)
    result, bundle = finetune(raw, tmp_path / "cache", callbacks=[callback(on_train_end=on_train_end)])
    card = result.model_card
    assert card["hyperparameters"]["trainable_parameters"] == peft_reference_count(tiny_model_dir, method, PEFT[method])
    assert card["method"] == method and card["versions"]["peft"]
    assert card["lora_saved_as"] == ("adapter" if method.endswith("_tuning") else "merged")
    assert (result.checkpoint / "adapter").is_dir() == method.endswith("_tuning")
    if method == "adalora":  # the rank budget was reallocated during training
        assert seen["rank_pattern"]
    model = HFClassifier.load(result.checkpoint, name="m", source="finetune", label_names=bundle.label_names, device="cpu", max_length=32)
    reloaded = np.log(model.predict_proba(probe))
    expected = seen["logits"] - np.log(np.exp(seen["logits"]).sum(1, keepdims=True))
    np.testing.assert_allclose(reloaded, expected, atol=1e-5)


def test_shots_are_k_per_class_drawn_with_the_seed(tiny_model_dir: Path, tiny_csv: Path, tmp_path: Path) -> None:
    from harness.data import load_bundle

    config, _ = parse_run_config(make_raw(tiny_model_dir, tiny_csv), source="t")
    train = load_bundle(config.dataset).splits["train"]
    a, b, again = draw_shots(train, 3, 0), draw_shots(train, 3, 1), draw_shots(train, 3, 0)
    assert [int(np.sum(np.asarray(a.labels) == c)) for c in range(2)] == [3, 3]
    assert a.ids == again.ids and a.ids != b.ids and set(a.ids) <= set(train.ids)
    with pytest.raises(DataError, match=r"finetune\.shots: 1000 examples per class .* class 'neg' has only \d+"):
        draw_shots(train, 1000, 0)
    result, _ = finetune(make_raw(tiny_model_dir, tiny_csv, shots=4, batch_size=8, max_steps=2), tmp_path / "c")
    assert result.model_card["data"]["shots"] == 4
    assert result.model_card["data"]["shot_ids"] == list(draw_shots(train, 4, 0).ids)


@pytest.mark.parametrize(
    ("finetune_keys", "message"),
    [
        ({"method": "adalorra"}, r"finetune\.method: .*did you mean 'adalora'"),
        ({"method": "ia3", "params": {"target_modulez": ["key"]}}, r"finetune\.params\.target_modulez: unknown key \(did you mean 'target_modules'\?\)"),
        ({"method": "lora", "params": {"r": 4}}, r"finetune\.params: method 'lora' takes its parameters from finetune\.lora"),
        ({"method": "adalora", "params": {"init_r": 2, "target_r": 4}}, r"finetune\.params: target_r must be <= init_r"),
        ({"method": "prompt_tuning", "params": {"init": "text"}}, r"finetune\.params: .*needs an init_text"),
    ],
)
def test_bad_method_config_names_the_key(tiny_model_dir: Path, tiny_csv: Path, finetune_keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_run_config(make_raw(tiny_model_dir, tiny_csv, **finetune_keys), source="t")


def test_new_keys_leave_old_cache_keys_alone(tiny_model_dir: Path, tiny_csv: Path) -> None:
    config, _ = parse_run_config(make_raw(tiny_model_dir, tiny_csv), source="t")
    assert config.finetune is not None
    assert {"shots", "params"}.isdisjoint(config.finetune.model_dump(mode="json"))


def test_setfit_head_predicts_as_setfit_does(
    tiny_encoder_dir: Path, tiny_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also: SetFit's Trainer writes nothing into the working directory (its default
    output_dir is ./checkpoints, logging_dir ./runs) and leaves no scratch in the checkpoint."""
    from safetensors.torch import load_file
    from setfit import SetFitModel
    from sklearn.linear_model import LogisticRegression

    from harness.models.kinds.base import load_kind
    from harness.models.sources import LocatedModel

    raw = make_raw(tiny_encoder_dir, tiny_csv, method="setfit", shots=4, batch_size=8, params={"num_iterations": 2})
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    result, bundle = finetune(raw, tmp_path / "cache")
    assert sorted(workdir.iterdir()) == []
    assert not [p for p in result.checkpoint.iterdir() if p.name.startswith("setfit-")]
    assert result.model_card["method"] == "setfit" and result.model_card["versions"]["setfit"]
    assert not any(p.suffix == ".pkl" for p in result.checkpoint.rglob("*"))
    config, _ = parse_run_config(raw, source="t")
    found = LocatedModel(folder=result.checkpoint, name="sf", source="finetune", model_card=result.model_card)
    adapter = load_kind(config, found, bundle)
    assert adapter.info().kind == "setfit" and adapter.info().training.shots == 4
    reference = SetFitModel.from_pretrained(str(result.checkpoint), local_files_only=True, device="cpu")
    head = load_file(str(result.checkpoint / "head.safetensors"))
    reference.model_head = LogisticRegression()
    reference.model_head.coef_, reference.model_head.intercept_ = head["coef"].numpy(), head["intercept"].numpy()
    reference.model_head.classes_ = head["classes"].numpy()
    texts = list(bundle.splits["test"].texts[:6])
    np.testing.assert_allclose(adapter.predict_proba(texts), reference.predict_proba(texts, as_numpy=True), atol=1e-5)
