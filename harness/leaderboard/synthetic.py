"""Synthetic run folders for tests, the build benchmark and screenshots.

A synthetic run is a real run folder — record.json built from ``RunRecord``, predictions.jsonl
and a manifest from ``write_manifest`` — whose numbers come from a seeded generator instead of a
model. Accuracy and its interval are computed from the written predictions, so paired tests
over them are meaningful. Never used by ``add`` or ``build`` themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.leaderboard.entries import SOURCE_FILE, slugify
from harness.records import (
    PREDICTIONS_FILE,
    RECORD_FILE,
    DatasetInfo,
    Metric,
    ModelInfo,
    Provenance,
    Resource,
    RunRecord,
    SplitInfo,
    SuiteRecord,
    dump_record,
)
from harness.stats import wilson_interval
from harness.store import sha256_bytes, write_manifest

SPLIT_SHA = sha256_bytes(b"synthetic rotten-tomatoes test split")


@dataclass(frozen=True)
class Spec:
    """What a synthetic model scores."""

    name: str
    accuracy: float
    asr: float = 0.5
    p50_ms: float = 10.0
    gap: float = 0.02
    seed: int = 0
    n: int = 200
    model_card: dict[str, object] | None = None
    note: str = ""


def _wilson(k: int, n: int) -> tuple[float | None, float | None]:
    ci = wilson_interval(k, n)
    return ci.low, ci.high


def _predictions(spec: Spec) -> tuple[list[dict[str, object]], int]:
    """Seeded predictions at the spec's accuracy, and how many are correct."""
    rng = np.random.default_rng(spec.seed)
    labels = rng.integers(0, 2, size=spec.n)
    correct = rng.random(spec.n) < spec.accuracy
    predicted = np.where(correct, labels, 1 - labels)
    names = ("neg", "pos")
    confidence = 0.55 + 0.4 * rng.random(spec.n)
    rows: list[dict[str, object]] = []
    for i in range(spec.n):
        p_pred = float(confidence[i])
        probs = [p_pred, 1.0 - p_pred] if predicted[i] == 0 else [1.0 - p_pred, p_pred]
        rows.append(
            {
                "id": f"ex{i:05d}",
                "label": names[labels[i]],
                "predicted": names[predicted[i]],
                "probabilities": probs,
            }
        )
    return rows, int(correct.sum())


def _accuracy_suite(spec: Spec, k: int) -> SuiteRecord:
    acc_lo, acc_hi = _wilson(k, spec.n)
    acc = k / spec.n
    return SuiteRecord(
        name="accuracy",
        version="1",
        params={"n_bootstrap": 200},
        status="ok",
        wall_time_s=1.5,
        metrics=[
            Metric(
                name="accuracy",
                value=acc,
                higher_is_better=True,
                ci_low=acc_lo,
                ci_high=acc_hi,
                ci_method="wilson",
                n=spec.n,
                description="Share of correct predictions.",
            ),
            Metric(
                name="f1_macro",
                value=max(0.0, acc - 0.01),
                higher_is_better=True,
                ci_low=max(0.0, acc - 0.06),
                ci_high=min(1.0, acc + 0.04),
                ci_method="percentile bootstrap",
                n=spec.n,
            ),
            Metric(
                name="ece",
                value=abs(0.9 - acc) / 3,
                higher_is_better=False,
                n=spec.n,
                ci_low=abs(0.9 - acc) / 4,
                ci_high=abs(0.9 - acc) / 2,
                ci_method="percentile bootstrap",
            ),
            Metric(name="n_truncated", value=0, higher_is_better=None, n=spec.n),
        ],
        warnings=[f"synthetic record {spec.note}".strip()],
    )


def _robustness_suite(spec: Spec, k: int) -> SuiteRecord:
    n_attacked = max(k, 1)
    k_asr = round(spec.asr * n_attacked)
    asr_lo, asr_hi = _wilson(k_asr, n_attacked)
    return SuiteRecord(
        name="robustness",
        version="1",
        params={"recipes": ["pwws"], "n_examples": 50},
        status="ok",
        wall_time_s=30.0,
        metrics=[
            Metric(
                name="pwws.attack_success_rate",
                value=k_asr / n_attacked,
                higher_is_better=False,
                ci_low=asr_lo,
                ci_high=asr_hi,
                ci_method="wilson",
                n=n_attacked,
            )
        ],
        departures=["synthetic: no attack was run"],
        resources=[
            Resource(
                name="wordnet", source="synthetic==0:wordnet", sha256=SPLIT_SHA, license="WordNet"
            )
        ],
    )


def _latency_suite(spec: Spec) -> SuiteRecord:
    return SuiteRecord(
        name="latency",
        version="1",
        params={"batch_sizes": [1]},
        status="ok",
        wall_time_s=5.0,
        metrics=[
            Metric(
                name="single_stream.p50_ms",
                value=spec.p50_ms,
                higher_is_better=False,
                ci_low=spec.p50_ms * 0.97,
                ci_high=spec.p50_ms * 1.03,
                ci_method="order statistics",
                n=200,
                unit="ms",
            )
        ],
    )


def _bias_suite(spec: Spec) -> SuiteRecord:
    return SuiteRecord(
        name="bias",
        version="1",
        params={"columns": ["group"]},
        status="ok",
        wall_time_s=2.0,
        metrics=[
            Metric(
                name="accuracy_gap.group",
                value=spec.gap,
                higher_is_better=False,
                ci_low=spec.gap - 0.04,
                ci_high=spec.gap + 0.04,
                ci_method="percentile bootstrap",
                n=spec.n,
            )
        ],
    )


def _provenance(spec: Spec) -> Provenance:
    return Provenance(
        harness_version="0.1.0",
        git_commit="0" * 40,
        git_dirty=False,
        python="3.11",
        packages={"numpy": "2"},
        os="Linux",
        cpu="synthetic",
        gpu=None,
        device="cpu",
        torch_threads=1,
        seed=spec.seed,
        config_sha256=SPLIT_SHA,
        started_utc="2025-01-01T00:00:00Z",
        finished_utc="2025-01-01T00:01:00Z",
        deterministic=True,
    )


def make_record(
    spec: Spec, *, split_sha: str = SPLIT_SHA
) -> tuple[RunRecord, list[dict[str, object]]]:
    """A complete record of the four default suites for ``spec``, and its prediction rows."""
    rows, k = _predictions(spec)
    suites = [
        _accuracy_suite(spec, k),
        _robustness_suite(spec, k),
        _latency_suite(spec),
        _bias_suite(spec),
    ]
    record = RunRecord(
        run_id=f"synthetic-{spec.seed}",
        status="complete",
        config={"name": spec.name, "suites": ["accuracy", "robustness", "latency", "bias"]},
        provenance=_provenance(spec),
        model=ModelInfo(
            name=spec.name,
            source="finetune",
            location=f"models/{spec.seed}",
            digest=SPLIT_SHA,
            n_parameters=22_000_000,
            label_names=["neg", "pos"],
            max_length=128,
            model_card=spec.model_card,
        ),
        dataset=DatasetInfo(
            name="rotten-tomatoes",
            source="artifact",
            eval_split="test",
            label_names=["neg", "pos"],
            splits=[SplitInfo(name="test", n=spec.n, sha256=split_sha)],
            group_columns=["group"],
        ),
        suites=suites,
    )
    return record, rows


def write_run(
    folder: Path, spec: Spec, *, split_sha: str = SPLIT_SHA, schema_version: str | None = None
) -> Path:
    """A complete run folder; ``schema_version`` overrides the record's (to test refusal)."""
    record, rows = make_record(spec, split_sha=split_sha)
    folder.mkdir(parents=True, exist_ok=True)
    text = dump_record(record)
    if schema_version is not None:
        raw = json.loads(text)
        raw["schema_version"] = schema_version
        text = json.dumps(raw, sort_keys=True, indent=2) + "\n"
    (folder / RECORD_FILE).write_text(text, encoding="utf-8")
    (folder / PREDICTIONS_FILE).write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
    )
    write_manifest(folder)
    return folder


def write_entry(entries_dir: Path, spec: Spec, *, split_sha: str = SPLIT_SHA) -> Path:
    """An entry folder written directly, as ``add`` would leave it, without a run folder first.

    For building large synthetic leaderboards quickly (the build benchmark); ``build`` verifies
    it exactly like any other entry.
    """
    record, rows = make_record(spec, split_sha=split_sha)
    text = dump_record(record)
    folder = entries_dir / f"{slugify(spec.name)}-{sha256_bytes(text.encode())[:12]}"
    folder.mkdir(parents=True)
    (folder / RECORD_FILE).write_text(text, encoding="utf-8")
    trimmed = [{"id": r["id"], "label": r["label"], "predicted": r["predicted"]} for r in rows]
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in trimmed)
    (folder / PREDICTIONS_FILE).write_text(lines, encoding="utf-8")
    source = {"run_id": record.run_id, "run_manifest_tree_sha256": None, "record_sha256": None}
    (folder / SOURCE_FILE).write_text(json.dumps(source, sort_keys=True) + "\n", encoding="utf-8")
    write_manifest(folder)
    return folder


def default_specs() -> list[Spec]:
    """Three models shaped like the real default entries (full, LoRA, frozen encoder)."""
    card = {"base_model": "minilm-l6", "epochs": 3, "learning_rate": 5e-5, "train_examples": 8530}
    return [
        Spec(
            "minilm-l6 (full fine-tune)",
            0.80,
            asr=0.62,
            p50_ms=9.5,
            gap=0.03,
            seed=1,
            model_card=card,
        ),
        Spec(
            "minilm-l6 (LoRA r=8)",
            0.78,
            asr=0.66,
            p50_ms=9.8,
            gap=0.02,
            seed=2,
            model_card={**card, "lora_r": 8},
        ),
        Spec(
            "minilm-l6 (frozen encoder)",
            0.66,
            asr=0.71,
            p50_ms=9.4,
            gap=0.05,
            seed=3,
            model_card={**card, "frozen": True},
        ),
    ]
