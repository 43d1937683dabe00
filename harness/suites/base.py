"""The Suite interface and the context a suite runs in.

A suite is a small class: a ``Params`` pydantic model (strict, documented, defaults filled in),
a ``name`` and ``version``, and a ``run`` method that reads the model adapter, the evaluation
dataset and the context, writes per-example rows through ``ctx.examples`` (append-only,
resumable), and returns a ``SuiteOutcome``. Constructors do no work. A suite registers itself
with a bare ``@registry.suites.register`` in its own module (the registry reads ``name``) and
never writes report HTML. ``Suite`` is generic in its params: ``class MySuite(Suite[MyParams])``
gives ``self.params`` the type ``MyParams``, no cast needed.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, get_args, get_origin

from typing_extensions import TypeVar

from harness.predictions import Predictions
from harness.records import Metric, Resource, StrictModel, SuiteCapabilities
from harness.records import proportion_metric as proportion_metric  # for suite authors
from harness.store import ExampleLog

if TYPE_CHECKING:
    from harness.data import Dataset, DatasetBundle
    from harness.models.base import FloatArray, ModelAdapter


class SuiteParams(StrictModel):
    """Base of every suite's parameters: strict, frozen, documented per field."""


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


# The params type of a suite. Its default (PEP 696) lets code that handles any suite say plain
# ``Suite`` (the runner, the registry's users); a suite names its own: ``Suite[AccuracyParams]``.
P = TypeVar("P", bound=SuiteParams, default=SuiteParams)


class Suite(ABC, Generic[P]):
    """Base class of every suite. Subclasses set ``name``, ``version`` and ``Params``, the
    pydantic class of ``P`` (a ClassVar cannot be typed with a type variable, so
    ``__init_subclass__`` fills ``Params`` in from ``Suite[P]`` when a suite leaves it out, and
    refuses a ``Params`` that is not ``P``)."""

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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            args = get_args(base) if get_origin(base) is Suite else ()
            if not args or not isinstance(args[0], type):
                continue  # plain Suite, or still generic (Suite[P])
            declared = cls.__dict__.get("Params")
            if declared is None:
                cls.Params = args[0]
            elif declared is not args[0]:
                raise TypeError(
                    f"{cls.__qualname__}: Params is {declared.__name__} but the class is "
                    f"Suite[{args[0].__name__}]"
                )

    def __init__(self, *, params: P) -> None:
        self.params: P = params

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


def prediction_probabilities(model: ModelAdapter, texts: Sequence[str]) -> FloatArray:
    """Convenience for suites that need fresh predictions on perturbed texts."""
    return model.predict_proba(list(texts))
