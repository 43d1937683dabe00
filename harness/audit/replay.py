"""Audit replay (``harness verify --replay N``): re-predict recorded examples and compare.

The anti-tampering check MLPerf calls TEST01: a run folder whose manifest was rewritten after
its predictions were edited still fails here, because the predictions no longer follow from the
model. N examples are chosen deterministically (ordered by a seeded hash of their ids, the run's
seed as key), the model the record names is loaded from its location after its digest is
checked against the record, and the examples' texts come from the dataset in the record's
config. Any changed argmax is a problem; so is a probability that moved by more than
``PROBABILITY_TOLERANCE`` (padding-to-longest batches differ in float rounding only).

torch and transformers are imported here, inside the function, never by ``harness verify``
without ``--replay``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from harness.audit.verify import VerifyReport
from harness.errors import HarnessError
from harness.gate.inputs import PredictionTable, read_predictions
from harness.records import PREDICTIONS_FILE, RunRecord

PROBABILITY_TOLERANCE = 1e-4


def choose_ids(ids: tuple[str, ...], n: int, seed: int) -> list[str]:
    """The first ``n`` ids by a seeded hash: stable, and independent of file order."""
    ranked = sorted(ids, key=lambda i: hashlib.sha256(f"replay\0{seed}\0{i}".encode()).digest())
    return ranked[: max(n, 0)]


def _model_folder(run_dir: Path, record: RunRecord) -> Path | None:
    location = Path(record.model.location)
    candidates = (
        [location] if location.is_absolute() else [run_dir / location, Path.cwd() / location]
    )
    for folder in candidates:
        if folder.is_dir():
            return folder
    artifact = (record.config.get("model") or {}).get("artifact")
    if record.model.source == "artifact" and artifact:
        from harness.artifacts import fetch

        return fetch(str(artifact))
    return None


def replay_into(report: VerifyReport, n: int) -> VerifyReport:
    """Add what re-predicting ``n`` recorded examples finds to a ``verify_run`` report."""
    if report.record is None:
        report.problems.append("replay skipped: the record could not be read")
    else:
        report.problems += replay(report.run_dir, report.record, n)
        report.checked.append(f"replay of {n} example(s)")
    return report


class _Refused(Exception):
    """A reason the replay cannot run: reported as one problem."""


def replay(run_dir: Path, record: RunRecord, n: int) -> list[str]:
    """Problems found by re-predicting ``n`` recorded examples (empty list: all reproduced).

    Only examples the run answered are chosen: a row without a prediction (``predicted`` null
    with its ``error``) has nothing to reproduce."""
    if n <= 0:
        return [f"--replay must be a positive number of examples (got {n})"]
    labels = list(record.dataset.label_names or record.model.label_names)
    try:
        table = read_predictions(run_dir / PREDICTIONS_FILE, labels).scored()
        folder = _checked_model_folder(run_dir, record)
        config, text_of = _recorded_inputs(record)
        chosen = choose_ids(table.ids, n, record.provenance.seed)
        _check_ids(chosen, text_of, record, config)
    except HarnessError as exc:
        return [f"replay: {exc.message}"]
    except _Refused as exc:
        return [str(exc)]
    probs = _predict(folder, record, config, labels, [text_of[i] for i in chosen])
    return _compare(table, chosen, probs)


def _checked_model_folder(run_dir: Path, record: RunRecord) -> Path:
    from harness.models.hf import model_digest

    folder = _model_folder(run_dir, record)
    if folder is None:
        raise _Refused(
            f"replay: the model folder {record.model.location!r} named by the record "
            "is not available here"
        )
    digest = model_digest(folder)[0]
    if digest != record.model.digest:
        raise _Refused(
            f"replay: the model at {folder} has digest {digest[:12]}…, "
            f"the record names {record.model.digest[:12]}…; "
            "refusing to replay with a different model"
        )
    return folder


def _recorded_inputs(record: RunRecord) -> tuple[Any, dict[str, str]]:
    """The record's validated config and id -> text of its evaluation split."""
    from harness.config import RunConfig
    from harness.data import load_bundle

    try:
        config = RunConfig.model_validate(record.config)
        bundle = load_bundle(config.dataset)
        data = bundle.get(config.dataset.eval_split)
    except HarnessError as exc:
        raise _Refused(
            f"replay: cannot load the dataset named in the record's config: {exc.message}"
        ) from None
    except ValueError as exc:  # pydantic ValidationError
        raise _Refused(f"replay: the record's config does not validate ({exc})") from None
    return config, dict(zip(data.ids, data.texts, strict=True))


def _check_ids(chosen: list[str], text_of: dict[str, str], record: RunRecord, config: Any) -> None:
    missing = [i for i in chosen if i not in text_of]
    if not missing:
        return
    split = config.dataset.eval_split
    recorded = record.dataset.split(split)
    hint = ""
    if recorded is not None:
        from harness.data import load_bundle

        data = load_bundle(config.dataset).get(split)
        if recorded.sha256 != data.digest():
            hint = (
                f"; the split loaded from the record's config has digest {data.digest()[:12]}…, "
                f"the record {recorded.sha256[:12]}…"
            )
    raise _Refused(
        f"replay: {len(missing)} recorded id(s) are not in the dataset's {split!r} split "
        f"(first: {missing[0]!r}){hint}"
    )


def _predict(
    folder: Path, record: RunRecord, config: Any, labels: list[str], texts: list[str]
) -> Any:
    from harness.models.hf import HFClassifier

    model = HFClassifier.load(
        folder,
        name=record.model.name,
        source=record.model.source,
        label_names=labels,
        device="cpu",
        max_length=record.model.max_length,
        batch_size=config.model.batch_size,
        precision="fp32",
        allow_pickle=config.model.allow_pickle,
        trust_remote_code=config.model.trust_remote_code,
    )
    return model.predict_proba(texts)


def _compare(table: PredictionTable, chosen: list[str], probs: Any) -> list[str]:
    index = table.index()
    rows = [index[i] for i in chosen]
    problems = []
    changed = [
        chosen[j] for j, r in enumerate(rows) if int(probs[j].argmax()) != int(table.predicted[r])
    ]
    if changed:
        problems.append(
            f"replay: {len(changed)} of {len(chosen)} re-predicted example(s) "
            "differ from predictions.jsonl "
            f"(ids: {', '.join(changed[:10])}{' …' if len(changed) > 10 else ''})"
        )
    if table.probabilities.size:
        drift = float(np.max(np.abs(probs - table.probabilities[rows])))
        if drift > PROBABILITY_TOLERANCE:
            problems.append(
                f"replay: recorded probabilities differ from the model's by up to {drift:.3g} "
                f"(tolerance {PROBABILITY_TOLERANCE:g})"
            )
    return problems
