"""The fp32 agreement probe: how far a reduced-precision evaluation is from the fp32 reference.

Whenever the evaluation forwards run in bf16, fp16 or int8 (``model.precision``), a seeded
sample of the evaluation split (``model.agreement.sample``, ``Dataset.sample`` order) is run
again through an fp32 copy of the model and compared with the run's own predictions:

* argmax agreement (share of examples whose predicted class is the same),
* max and mean |Δp| over every class probability of the sample,
* the accuracy difference (reduced − fp32) over the same examples, with Tango's score interval
  and the exact McNemar test on the discordant pairs — the gate's paired statistics, whose
  coverage is simulated at n = 5 … 300 (tests/test_gate_simulation.py). A percentile bootstrap
  was used before: with no discordant pair it collapsed to [0, 0], claiming an exactness 512
  sampled examples cannot give; the score interval stays honest there (about ±0.75 points).

Below ``min_agreement`` (default 99.5%) the run warns (the message is in the record and the
log); with ``strict: true`` it stops with an error instead. The figures go into the record's
``model.precision.agreement``. Examples whose prediction failed in either run are left out and
counted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.config import AgreementConfig
from harness.data import Dataset
from harness.errors import SuiteError
from harness.predictions import Predictions
from harness.stats import mcnemar_exact
from harness.stats.paired import tango_interval

REDUCED = ("bf16", "fp16", "int8")
MSG_LOW_AGREEMENT = (
    "model.precision {precision}: argmax agreement with fp32 is {agreement:.2%} on {n} sampled "
    "examples, below model.agreement.min_agreement {threshold:.2%}; the reduced-precision figures "
    "are not a stand-in for fp32 (use precision fp32, or raise the threshold knowingly)"
)
MSG_NO_REFERENCE = "model.precision {precision}: this model kind has no fp32 copy; agreement not measured"
MSG_NOTHING_TO_COMPARE = "no sampled example has a prediction in both precisions"


def compare(
    reduced: npt.ArrayLike,
    reference: npt.ArrayLike,
    labels: Sequence[int],
) -> dict[str, Any]:
    """Agreement figures of (n, k) probabilities ``reduced`` against ``reference`` (fp32)."""
    red = np.asarray(reduced, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    n = int(y.size)
    if red.shape != ref.shape or red.shape[0] != n:
        raise ValueError(f"shapes differ: reduced {red.shape}, reference {ref.shape}, labels {n}")
    if n == 0:
        return {"n": 0, "agreement": None, "max_abs_dp": None, "mean_abs_dp": None,
                "accuracy": None, "fp32_accuracy": None, "accuracy_delta": None,
                "ci": [None, None], "ci_method": None, "p_value": None,
                "only_reduced_right": 0, "only_fp32_right": 0}  # fmt: skip
    red_right = red.argmax(axis=1) == y
    ref_right = ref.argmax(axis=1) == y
    gap = np.abs(red - ref)
    up, down = int(np.sum(red_right & ~ref_right)), int(np.sum(~red_right & ref_right))
    ci = tango_interval(up, down, n)
    return {
        "n": n,
        "agreement": float(np.mean(red.argmax(axis=1) == ref.argmax(axis=1))),
        "max_abs_dp": float(gap.max()),
        "mean_abs_dp": float(gap.mean()),
        "accuracy": float(red_right.mean()),
        "fp32_accuracy": float(ref_right.mean()),
        "accuracy_delta": float(red_right.mean() - ref_right.mean()),
        "ci": [ci.low, ci.high],
        "ci_method": ci.method,
        "p_value": mcnemar_exact(up, down),
        "only_reduced_right": up,
        "only_fp32_right": down,
    }


def probe(
    model: Any,
    data: Dataset,
    predictions: Predictions,
    config: AgreementConfig,
    *,
    seed: int,
    logger: logging.Logger | None = None,
) -> dict[str, Any] | None:
    """The probe's figures for ``model`` (None when it runs in fp32: nothing to compare).

    Raises ``SuiteError`` below ``min_agreement`` when ``strict``; else the figures carry the
    warning. ``model`` needs ``precision`` and ``fp32_reference()`` (``HFClassifier`` has both).
    """
    precision = getattr(model, "precision", "fp32")
    if precision not in REDUCED:
        return None
    log = logger or logging.getLogger("harness")
    make_reference = getattr(model, "fp32_reference", None)
    if make_reference is None:
        message = MSG_NO_REFERENCE.format(precision=precision)
        log.warning(message)
        return {"precision": precision, "warning": message}
    sample = data.sample(config.sample, seed)
    position = {pid: i for i, pid in enumerate(predictions.ids)}
    kept = [j for j, pid in enumerate(sample.ids) if pid in position]
    reference = make_reference().predict_proba([sample.texts[j] for j in kept])
    finite = np.all(np.isfinite(reference), axis=1)
    rows = [(j, r) for j, r, ok in zip(kept, reference, finite, strict=True) if ok]
    if not rows:  # nothing vouches for the reduced precision: strict stops, else a warning
        message = f"model.agreement: {MSG_NOTHING_TO_COMPARE} ({len(sample)} sampled)"
        if config.strict:
            raise SuiteError(message)
        log.warning(message)
        return {**compare(np.zeros((0, 1)), np.zeros((0, 1)), []), "precision": precision,
                "sampled": len(sample), "left_out": len(sample), "warning": message}
    figures = compare(
        [predictions.probabilities[position[sample.ids[j]]] for j, _ in rows],
        [r for _, r in rows],
        [sample.labels[j] for j, _ in rows],
    )
    figures.update(precision=precision, sampled=len(sample), left_out=len(sample) - len(rows),
                   min_agreement=config.min_agreement, seed=seed, warning=None)  # fmt: skip
    if figures["agreement"] < config.min_agreement:
        message = MSG_LOW_AGREEMENT.format(
            precision=precision, agreement=figures["agreement"], n=figures["n"],
            threshold=config.min_agreement,
        )  # fmt: skip
        if config.strict:
            raise SuiteError(message + " (model.agreement.strict is true)")
        log.warning(message)
        figures["warning"] = message
    return figures


def attach(model: Any, figures: dict[str, Any] | None) -> None:
    """Put the probe's figures into the model's record (``model.precision.agreement``)."""
    record = getattr(model, "record_agreement", None)
    if figures is not None and record is not None:
        record(figures)

