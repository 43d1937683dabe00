"""The Suite interface and the context a suite runs in.

A suite is a small class: a ``Params`` pydantic model (strict, documented, defaults filled in),
a ``name`` and ``version``, and a ``run`` method that reads the model adapter, the evaluation
dataset and the context, writes per-example rows through ``ctx.examples`` (append-only,
resumable), and returns a ``SuiteOutcome``. Constructors do no work. A suite registers itself
with ``@registry.suites.register(name)`` in its own module and never writes report HTML.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from harness.records import Metric, Resource, SuiteCapabilities
from harness.store import ExampleLog

if TYPE_CHECKING:
    from harness.data import Dataset, DatasetBundle
    from harness.models.base import FloatArray, ModelAdapter


class SuiteParams(BaseModel):
    """Base of every suite's parameters: strict, frozen, documented per field."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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


ProgressFn = Callable[[int, int], None]  # (done, total)


@dataclass
class SuiteContext:
    """Everything a suite may use besides the model and the data."""

    seed: int
    run_dir: Path
    examples: ExampleLog
    logger: logging.Logger
    predictions: Callable[[], Predictions]
    bundle: DatasetBundle | None = None
    cache_dir: Path | None = None
    progress: ProgressFn = field(default=lambda done, total: None)
    workers: int = 1


@dataclass
class SuiteOutcome:
    """What a suite returns; the runner turns it into a ``SuiteRecord``."""

    metrics: list[Metric]
    warnings: list[str] = field(default_factory=list)
    departures: list[str] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    example_order: Sequence[str] | None = None  # final id order of the per-example file


class Suite(ABC):
    """Base class of every suite. Subclasses set ``name``, ``version`` and ``Params``."""

    name: ClassVar[str]
    version: ClassVar[str]
    Params: ClassVar[type[SuiteParams]]
    description: ClassVar[str] = ""
    # Parameters that make the suite quick on a tiny model; the registry-wide conformance test
    # (tests/test_suite_contract.py) runs every suite with them.
    smoke_params: ClassVar[dict[str, Any]] = {}
    # What the suite declares about itself (scikit-learn-style tags), copied into every record
    # so that the runner, sweeps, gate, report and leaderboard read them instead of keeping
    # their own lists of suite names. See ``harness.records.SuiteCapabilities``.
    capabilities: ClassVar[SuiteCapabilities] = SuiteCapabilities()

    def __init__(self, *, params: SuiteParams) -> None:
        self.params = params

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this suite cannot run on this machine, or None."""
        return None

    @classmethod
    def component_status(cls) -> dict[str, str | None]:
        """Named parts of the suite (e.g. attack recipes): None when usable here, else why not."""
        return {}

    @abstractmethod
    def run(self, model: ModelAdapter, data: Dataset, ctx: SuiteContext) -> SuiteOutcome:
        """Evaluate ``model`` on ``data``; write per-example rows through ``ctx.examples``."""


def proportion_metric(name: str, k: int, n: int, *, higher: bool | None, description: str) -> Metric:
    """A share k/n with its Wilson 95% interval (null when n is 0)."""
    from harness.stats import wilson_interval

    ci = wilson_interval(k, n)
    return Metric(
        name=name, value=k / n if n else None, higher_is_better=higher, ci_low=ci.low, ci_high=ci.high,
        ci_method="wilson" if n else None, n=n, description=description,
    )


def prediction_probabilities(model: ModelAdapter, texts: Sequence[str]) -> FloatArray:
    """Convenience for suites that need fresh predictions on perturbed texts."""
    return model.predict_proba(list(texts))
