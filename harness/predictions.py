"""The evaluation split's predictions: computed once per run (``harness.run.predictions``) and
shared by every suite and the parts they compose.

A core type, so that parts (bias, latency, …) can name it without importing ``harness.suites``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Predictions:
    """The evaluation split's predictions, computed once per run and shared by suites.

    Holds the examples the model answered; an example whose prediction failed (the model raised,
    or returned NaN / infinite scores) is left out of the arrays and listed in ``errors`` with
    its reason, so every suite can count it instead of silently scoring it.
    """

    ids: tuple[str, ...]
    labels: tuple[int, ...]
    probabilities: FloatArray  # (n, k)
    errors: Mapping[str, str] = field(default_factory=dict)

    @property
    def predicted(self) -> Any:
        return self.probabilities.argmax(axis=1)
