"""precision: auto | fp32 | bf16 | fp16 | int8 — resolution against the hardware, the record,
reduced-precision forwards of a real tiny BERT, and the fp32 agreement probe."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix

from harness.config import AgreementConfig, parse_run_config
from harness.data import Dataset
from harness.errors import ConfigError, SuiteError
from harness.models import agreement, precision
from harness.models.hf import HFClassifier
from harness.predictions import Predictions

LOG = logging.getLogger("test-precision")
TEXTS = ["a good film", "bad and dull", "great acting, poor plot", "fine", "x " * 40]


def _load(folder: Path, prec: str) -> HFClassifier:
    return HFClassifier.load(folder, name="tiny", source="path", device="cpu", max_length=32, batch_size=4, precision=prec)


# ------------------------------------------------------------------ resolution


def test_auto_without_native_bf16_picks_fp32_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(precision.FORCE_ENV, "0")
    cap = precision.detect("cpu")
    assert not cap.native_bf16 and precision.FORCE_ENV in cap.how
    chosen = precision.resolve_train("auto", "cpu")
    assert chosen.precision == "fp32"
    assert chosen.reason == precision.MSG_AUTO_NO_BF16.format(device="CPU", how=cap.how)
    assert chosen.as_record()["capability"]["native_bf16"] is False


def test_auto_with_native_bf16_trains_in_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(precision.FORCE_ENV, "1")
    chosen = precision.resolve_train("auto", "cpu")
    assert chosen.precision == "bf16" and "native bf16" in chosen.reason


def test_cpu_flags_decide_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(precision.FORCE_ENV, raising=False)
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512f", "avx512_vnni"}))
    cap = precision.detect("cpu")
    assert not cap.native_bf16 and cap.native_int8 and cap.torch_cpu_capability
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    assert precision.detect("cpu").native_bf16
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset())
    assert precision.detect("cpu").how == "cpu flags unknown"


def test_evaluation_auto_is_fp32_and_bad_combinations_are_refused() -> None:
    assert precision.resolve_eval("auto", "cpu").precision == "fp32"
    assert precision.resolve_eval("bf16", "cpu").precision == "bf16"
    cap = precision.Capability(device="cuda", native_bf16=True, native_int8=False, how="test")
    with pytest.raises(ConfigError, match="int8"):
        precision.resolve_eval("int8", "cuda", cap)
    with pytest.raises(ConfigError) as err:
        precision.resolve_train("fp16", "cpu")
    assert str(err.value) == precision.MSG_FP16_CPU_TRAIN
    with pytest.raises(ConfigError) as err:
        precision.resolve_train("int8", "cpu")
    assert str(err.value) == precision.MSG_INT8_TRAIN
    assert precision.resolve_train("fp16", "cuda", cap).precision == "fp16"  # CUDA: GradScaler path


def test_emulated_bf16_on_request_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(precision.FORCE_ENV, "0")
    chosen = precision.resolve_eval("bf16", "cpu")
    assert chosen.precision == "bf16" and "emulated" in chosen.reason


def test_config_rejects_unknown_precision() -> None:
    raw = {"dataset": {"name": "rotten-tomatoes"}, "model": {"artifact": "minilm-l6", "precision": "int4"},
           "suites": [{"name": "accuracy"}]}  # fmt: skip
    with pytest.raises(ConfigError, match="precision"):
        parse_run_config(raw, source="test")
    raw["model"] = {"artifact": "minilm-l6", "agreement": {"min_agreement": 1.5}}
    with pytest.raises(ConfigError, match="min_agreement"):
        parse_run_config(raw, source="test")


# ------------------------------------------------------------------ forwards


@pytest.mark.parametrize("prec", ["bf16", "fp16", "int8"])
def test_reduced_forward_is_close_to_fp32_and_recorded(tiny_model_dir: Path, prec: str) -> None:
    ref = _load(tiny_model_dir, "fp32").predict_proba(TEXTS)
    model = _load(tiny_model_dir, prec)
    got = model.predict_proba(TEXTS)
    assert np.abs(got - ref).max() < 0.05 and np.allclose(got.sum(axis=1), 1.0)
    info = model.info().precision
    assert info is not None and info["precision"] == prec and info["requested"] == prec
    assert model.info().dtype == prec and "native_bf16" in info["capability"]
    assert model.info().n_parameters == _load(tiny_model_dir, "fp32").info().n_parameters
    # The fp32 reference is the float model (for int8: the weights before quantization).
    np.testing.assert_allclose(model.fp32_reference().predict_proba(TEXTS), ref, atol=1e-6)


def test_bf16_forward_runs_under_cpu_autocast(tiny_model_dir: Path) -> None:
    model = _load(tiny_model_dir, "bf16")
    seen: list[torch.dtype] = []
    layer = next(m for m in model.model.modules() if isinstance(m, torch.nn.Linear))
    handle = layer.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    try:
        model.predict_proba(TEXTS[:1])
    finally:
        handle.remove()
    assert seen and seen[0] == torch.bfloat16


def test_fp32_default_records_the_reason(tiny_model_dir: Path) -> None:
    info = _load(tiny_model_dir, "auto").info().precision
    assert info is not None and info["precision"] == "fp32" and info["reason"] == precision.MSG_AUTO_EVAL


# ------------------------------------------------------------------ agreement figures


def _dirichlet(n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(k), size=n)


def test_compare_matches_sklearn_and_statsmodels() -> None:
    from statsmodels.stats.contingency_tables import mcnemar

    from harness.stats.paired import tango_interval

    ref = _dirichlet(400, 3, 0)
    red = np.clip(ref + np.random.default_rng(1).normal(0, 0.05, ref.shape), 0, None)
    red /= red.sum(axis=1, keepdims=True)
    y = np.random.default_rng(2).integers(0, 3, 400)
    out = agreement.compare(red, ref, y.tolist())
    assert out["agreement"] == pytest.approx(accuracy_score(ref.argmax(1), red.argmax(1)))
    assert out["max_abs_dp"] == pytest.approx(np.abs(red - ref).max())
    assert out["accuracy_delta"] == pytest.approx(accuracy_score(y, red.argmax(1)) - accuracy_score(y, ref.argmax(1)))
    table = confusion_matrix(ref.argmax(1) == y, red.argmax(1) == y, labels=[True, False])
    assert (out["only_reduced_right"], out["only_fp32_right"]) == (table[1, 0], table[0, 1])
    assert out["only_reduced_right"] + out["only_fp32_right"] > 10  # the test has discordant pairs
    assert out["p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue)
    tango = tango_interval(int(table[1, 0]), int(table[0, 1]), 400)  # its coverage: gate simulation
    assert out["ci"] == [tango.low, tango.high] and out["ci_method"] == tango.method
    assert out["ci"][0] <= out["accuracy_delta"] <= out["ci"][1]


def test_compare_edges() -> None:
    empty = agreement.compare(np.zeros((0, 2)), np.zeros((0, 2)), [])
    assert empty["n"] == 0 and empty["agreement"] is None and empty["ci"] == [None, None]
    one = agreement.compare([[0.6, 0.4]], [[0.4, 0.6]], [0])
    assert one["agreement"] == 0.0 and one["accuracy_delta"] == 1.0 and one["max_abs_dp"] == pytest.approx(0.2)
    assert one["p_value"] == 1.0 and one["ci"][0] < 1.0 == one["ci"][1]  # one pair proves little
    same = _dirichlet(512, 2, 3)
    labels = np.random.default_rng(4).integers(0, 2, 512).tolist()
    out = agreement.compare(same, same, labels)
    assert out["agreement"] == 1.0 and out["max_abs_dp"] == 0.0 and out["p_value"] == 1.0
    # No discordant pair in 512 is not proof of no difference on the split: the interval stays
    # open (a percentile bootstrap gave [0, 0]), and about as wide as the rule of three says.
    low, high = out["ci"]
    assert low < 0.0 < high and high == pytest.approx(-low) and 0.004 < high < 0.01
    with pytest.raises(ValueError, match="shapes"):
        agreement.compare(same, same[:2], labels)


# ------------------------------------------------------------------ the probe on a real model


def _data(n: int) -> Dataset:
    ids = tuple(f"e{i}" for i in range(n))
    texts = tuple(TEXTS[i % len(TEXTS)] + f" {i}" for i in range(n))
    return Dataset(name="t", split="test", ids=ids, texts=texts, labels=tuple(i % 2 for i in range(n)), label_names=("neg", "pos"))


def _preds(model: HFClassifier, data: Dataset) -> Predictions:
    return Predictions(ids=data.ids, labels=data.labels, probabilities=model.predict_proba(list(data.texts)))


def test_probe_records_figures_and_fp32_runs_none(tiny_model_dir: Path) -> None:
    data = _data(30)
    fp32 = _load(tiny_model_dir, "fp32")
    assert agreement.probe(fp32, data, _preds(fp32, data), AgreementConfig(), seed=0) is None
    model = _load(tiny_model_dir, "int8")
    figures = agreement.probe(model, data, _preds(model, data), AgreementConfig(sample=20), seed=0, logger=LOG)
    assert figures is not None and figures["n"] == 20 and figures["sampled"] == 20
    assert 0.0 <= figures["agreement"] <= 1.0 and figures["max_abs_dp"] < 0.05
    agreement.attach(model, figures)
    recorded = model.info().precision
    assert recorded is not None and recorded["agreement"]["n"] == 20 and recorded["precision"] == "int8"


class _Skewed(HFClassifier):
    """A real tiny model whose fp32 reference disagrees everywhere (flipped probabilities)."""

    def fp32_reference(self) -> HFClassifier:
        base = super().fp32_reference()

        class Flipped:
            def predict_proba(self, texts: list[str]) -> np.ndarray:
                return base.predict_proba(texts)[:, ::-1]

        return Flipped()  # type: ignore[return-value]


def test_probe_warns_below_threshold_and_strict_is_an_error(tiny_model_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    loaded = _load(tiny_model_dir, "bf16")
    model = _Skewed(model=loaded.model, tokenizer=loaded.tokenizer, label_names=loaded.label_names, device="cpu",
                    max_length=32, batch_size=4, precision="bf16", info=loaded.info())  # fmt: skip
    data = _data(12)
    preds = _preds(model, data)
    with caplog.at_level(logging.WARNING):
        figures = agreement.probe(model, data, preds, AgreementConfig(sample=12), seed=0, logger=LOG)
    assert figures is not None and figures["agreement"] == 0.0
    assert figures["warning"] and figures["warning"] in caplog.text
    with pytest.raises(SuiteError, match="strict"):
        agreement.probe(model, data, preds, AgreementConfig(sample=12, strict=True), seed=0)


def test_probe_leaves_out_failed_predictions(tiny_model_dir: Path) -> None:
    model = _load(tiny_model_dir, "bf16")
    data = _data(10)
    full = _preds(model, data)
    keep = [i for i in range(10) if i != 3]
    preds = Predictions(ids=tuple(data.ids[i] for i in keep), labels=tuple(data.labels[i] for i in keep),
                        probabilities=full.probabilities[keep], errors={"e3": "model raised"})  # fmt: skip
    figures = agreement.probe(model, data, preds, AgreementConfig(sample=10), seed=0)
    assert figures is not None and figures["n"] == 9 and figures["left_out"] == 1


# ------------------------------------------------------------------ fine-tuning


def test_finetune_auto_trains_bf16_where_native_and_keys_it(
    tiny_model_dir: Path, tiny_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import TrainerCallback

    from tests.test_finetune import finetune, make_raw

    seen: list[torch.dtype] = []

    class LinearOutputs(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, args: object, state: object, control: object, model: torch.nn.Module, **kw: object) -> None:
            layer = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
            layer.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))

    raw = make_raw(tiny_model_dir, tiny_csv, precision="auto", max_steps=3)
    monkeypatch.setenv(precision.FORCE_ENV, "1")
    bf16, _ = finetune(raw, tmp_path, callbacks=[LinearOutputs()])
    assert seen and set(seen) == {torch.bfloat16}  # the Trainer's forwards ran under bf16 autocast
    card = bf16.model_card
    assert card["precision"]["precision"] == "bf16" and card["hardware"]["precision"] == "bf16"
    assert card["precision"]["capability"]["how"].startswith("forced")
    monkeypatch.setenv(precision.FORCE_ENV, "0")
    fp32, _ = finetune(raw, tmp_path)
    assert not fp32.cache_hit and fp32.checkpoint != bf16.checkpoint
    assert fp32.model_card["precision"]["precision"] == "fp32"
    assert "no native bf16" in fp32.model_card["precision"]["reason"]
    # An explicit fp32 is the same fine-tune as auto on a machine without bf16 (and as before).
    again, _ = finetune(make_raw(tiny_model_dir, tiny_csv, precision="fp32", max_steps=3), tmp_path)
    assert again.cache_hit and again.checkpoint == fp32.checkpoint


# ------------------------------------------------------------------ a whole run (CLI)


def test_run_in_int8_records_agreement_and_strict_fails(tiny_run_file: Path, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    def run(out: Path, *sets: str) -> subprocess.CompletedProcess[str]:
        args = [a for s in sets for a in ("--set", s)]
        return subprocess.run([sys.executable, "-m", "harness", "run", str(tiny_run_file), "--out", str(out), *args],
                              capture_output=True, text=True, timeout=600, check=False)  # fmt: skip

    proc = run(tmp_path / "a", "model.precision=int8", "model.agreement.sample=20")
    assert proc.returncode == 0, proc.stderr
    model = json.loads((tmp_path / "a" / "record.json").read_text())["model"]
    assert model["dtype"] == "int8" and model["precision"]["precision"] == "int8"
    probe = model["precision"]["agreement"]
    assert probe["n"] == 20 and 0.0 <= probe["agreement"] <= 1.0 and probe["ci"][0] <= probe["accuracy_delta"] <= probe["ci"][1]
    strict = run(tmp_path / "b", "model.precision=int8", "model.agreement.min_agreement=1.0",
                 "model.agreement.strict=true", "model.agreement.sample=20")  # fmt: skip
    if probe["agreement"] < 1.0:
        assert strict.returncode == 5 and "min_agreement" in strict.stderr
    else:  # the tiny model agreed everywhere: strict at 100% passes
        assert strict.returncode == 0


def test_report_says_precision_reason_and_agreement(tiny_model_dir: Path) -> None:
    from harness.reports.sections import _precision_text

    model = _load(tiny_model_dir, "bf16")
    figures = agreement.compare([[0.9, 0.1], [0.4, 0.6]], [[0.8, 0.2], [0.6, 0.4]], [0, 1])
    model.record_agreement({**figures, "warning": "low"})
    text = _precision_text(model.info())
    assert text.startswith("bf16 (bf16: as requested") and "fp32 agreement 50.00% on 2 examples" in text
    assert "max |Δp| 2.0e-01" in text and "accuracy Δ +50.00%" in text and "WARNING: low" in text


def test_probe_with_nothing_to_compare_warns_or_stops(tiny_model_dir: Path) -> None:
    model = _load(tiny_model_dir, "bf16")
    data = _data(3)
    none = Predictions(ids=(), labels=(), probabilities=np.zeros((0, 2)), errors={i: "failed" for i in data.ids})
    figures = agreement.probe(model, data, none, AgreementConfig(), seed=0)
    assert figures is not None and figures["n"] == 0 and figures["left_out"] == 3
    assert figures["warning"] and agreement.MSG_NOTHING_TO_COMPARE in figures["warning"]
    with pytest.raises(SuiteError, match="no sampled example"):
        agreement.probe(model, data, none, AgreementConfig(strict=True), seed=0)
