"""What a model kind is: a registered class that loads a located model folder into a
``ModelAdapter``, with typed parameters and two declarations the rest of the house reads.

- ``trains``: whether a fine-tune stage can produce this kind (zero-shot and prompted kinds
  classify with no training at all);
- ``gradient_unavailable`` on the adapter: ``None`` when ``adapter.model`` is a torch
  sequence classifier whose forward over input embeddings gives the class logits (what the
  gradient suites need), otherwise the reason, which those suites record as
  "not applicable: <reason>" before falling back to what the kind does support;
- ``absent_labels`` on the adapter: labels its head was never fitted on (logit -inf,
  probability 0), for which the explain suite explains nothing and says why.

Constructors do no work; ``load`` does it. torch and transformers are imported inside methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from harness.records import StrictModel, TrainingInfo

if TYPE_CHECKING:
    from harness.data import DatasetBundle
    from harness.models.base import ModelAdapter
    from harness.models.sources import LocatedModel

MSG_NOT_APPLICABLE = "not applicable: {reason}"
MSG_ABSENT_CLASS = (
    "class {name!r} was absent from the model's training set (the head was never fitted on it: "
    "logit -inf, probability 0)"
)


class KindParams(StrictModel):
    """Base of every kind's parameters (strict: unknown keys are refused with did-you-mean)."""


class NoKindParams(KindParams):
    """A kind without parameters of its own."""


@dataclass(frozen=True)
class LoadRequest:
    """How the run wants the model loaded: the kind's params and the inference settings."""

    params: Any  # the kind's validated Params
    label_names: tuple[str, ...]
    device: str = "auto"
    max_length: int = 128
    batch_size: int = 32
    precision: str = "auto"
    seed: int = 0
    bundle: DatasetBundle | None = None  # for demonstrations drawn from a training split


class ModelKind(ABC):
    """Base of every registered model kind (``@registry.model_kinds.register`` reads ``name``)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Params: ClassVar[type[KindParams]] = NoKindParams
    trains: ClassVar[bool] = True

    @classmethod
    @abstractmethod
    def load(cls, found: LocatedModel, request: LoadRequest) -> ModelAdapter:
        """Load ``found.folder`` (after the kind's safety checks) into an adapter."""


def absent_labels(model: object) -> tuple[int, ...]:
    """Label indices ``model`` can never predict because its head never saw them (a few-shot
    head fitted without a class; ``SetFitClassifier.absent_labels``): their logit is -inf."""
    declared = getattr(model, "absent_labels", ())
    return tuple(int(i) for i in declared) if isinstance(declared, tuple) else ()


def gradient_unavailable(model: object) -> str | None:
    """Why ``model`` gives no gradient access (see the module docstring), or None."""
    declared = getattr(model, "gradient_unavailable", None)
    if isinstance(declared, str):
        return declared
    needed = ("model", "tokenizer", "collate", "logits")
    missing = [a for a in needed if not hasattr(model, a)]
    if missing:
        return f"{type(model).__name__} gives no torch model access (no {', '.join(missing)})"
    return None


def training_from_card(card: Mapping[str, Any] | None) -> TrainingInfo | None:
    """The record's training summary from a fine-tune's model card (None without a card)."""
    if not card:
        return None
    hyper = card.get("hyperparameters") or {}
    training = card.get("training") or {}
    data = card.get("data") or {}
    trainable = hyper.get("trainable_parameters")
    if trainable is None:
        return None
    return TrainingInfo(
        method=str(card.get("method")),
        shots=data.get("shots"),
        n_train=int((data.get("train") or {}).get("n") or 0),
        trainable_parameters=int(trainable),
        total_parameters=hyper.get("total_parameters"),
        train_wall_time_s=float(training.get("wall_time_s") or 0.0),
        examples_per_s=training.get("examples_per_s"),
    )


NO_TRAINING = TrainingInfo(method="none", trainable_parameters=0, train_wall_time_s=0.0)


def kind_name_of(config: Any) -> str:
    """The kind that loads a run's model: ``model.kind``, or for a fine-tune stage the kind
    its method's checkpoint is (a SetFit checkpoint is a ``setfit`` model)."""
    if config.finetune is not None:
        from harness.models.finetune.methods import method

        produced = method(config.finetune.method).model_kind
        return str(produced)
    return str(config.model.kind)


def load_kind(config: Any, found: LocatedModel, bundle: DatasetBundle | None) -> ModelAdapter:
    """Load ``found`` with the kind of ``config`` (a validated RunConfig)."""
    from harness import registry

    kind: type[ModelKind] = registry.model_kinds.get(kind_name_of(config))
    m = config.model
    request = LoadRequest(
        params=kind.Params.model_validate(m.params), label_names=tuple(bundle.label_names) if
        bundle is not None else tuple(config.dataset.labels or ()), device=config.device,
        max_length=m.max_length, batch_size=m.batch_size, precision=m.precision, seed=config.seed,
        bundle=bundle,
    )  # fmt: skip
    return kind.load(found, request)
