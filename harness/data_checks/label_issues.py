"""Probable label errors in the evaluation split, found by cleanlab (confident learning).

``cleanlab.filter.find_label_issues`` reads the given labels and the model's predicted
probabilities. Those must be out-of-sample: the evaluation split's predictions are, for every
example the model was not trained on, so the suite passes only the examples that contamination
did not find in the training data. The flags are reported as a count and share with examples
(given label, the label the model suggests, its probability of the given label); nothing is
dropped from any other figure.
"""

from __future__ import annotations

import warnings as pywarnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.records import Metric, proportion_metric

MSG_TOO_FEW = "label issues: {n} scored example(s) is too few for cleanlab (at least {minimum} needed); not checked"
MSG_CLEANLAB = "label issues: cleanlab could not check this split ({error}); not checked"
MIN_EXAMPLES = 10


@dataclass(frozen=True)
class LabelIssues:
    checked: bool
    n: int  # examples checked
    indices: list[int]  # positions (into the checked examples) flagged, most suspicious first
    self_confidence: list[float]  # the model's probability of the given label, per flagged one
    suggested: list[int]
    warnings: list[str] = field(default_factory=list)

    def metrics(self) -> list[Metric]:
        k = len(self.indices) if self.checked else 0
        n = self.n if self.checked else 0
        return [
            Metric(name="label_issues.count", value=float(k) if self.checked else None, higher_is_better=False, n=n,
                   description="Examples cleanlab flags as probably mislabelled (find_label_issues)."),
            proportion_metric("label_issues.share", k, n, higher=False,
                              description="Share of the checked examples flagged as probably mislabelled."),
        ]  # fmt: skip


def find_issues(labels: Sequence[int], probabilities: npt.NDArray[np.float64]) -> LabelIssues:
    """cleanlab's flags for ``labels`` (indices) under the model's ``probabilities`` (n, k)."""
    n = len(labels)
    if n < MIN_EXAMPLES:
        return LabelIssues(False, n, [], [], [], [MSG_TOO_FEW.format(n=n, minimum=MIN_EXAMPLES)])
    from cleanlab.filter import find_label_issues

    y = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probabilities, dtype=np.float64)
    try:
        with pywarnings.catch_warnings():
            pywarnings.simplefilter("ignore")  # cleanlab warns about small classes; we report them
            ranked = find_label_issues(y, probs, return_indices_ranked_by="self_confidence", n_jobs=1)
    except (ValueError, IndexError) as exc:
        return LabelIssues(False, n, [], [], [], [MSG_CLEANLAB.format(error=f"{type(exc).__name__}: {exc}"[:300])])
    idx = [int(i) for i in ranked]
    return LabelIssues(
        True, n, idx, [float(probs[i, y[i]]) for i in idx], [int(probs[i].argmax()) for i in idx]
    )


def issue_rows(issues: LabelIssues, ids: Sequence[str], texts: Sequence[str], labels: Sequence[int], names: Sequence[str], limit: int) -> list[dict[str, Any]]:
    """The most suspicious flags, for the record's details."""
    rows = []
    for i, conf, sug in list(zip(issues.indices, issues.self_confidence, issues.suggested, strict=True))[:limit]:
        rows.append({"id": ids[i], "text": texts[i], "given": names[labels[i]], "suggested": names[sug],
                     "p_given": round(conf, 4)})  # fmt: skip
    return rows
