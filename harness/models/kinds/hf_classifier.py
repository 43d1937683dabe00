"""The default kind: a Hugging Face sequence classifier (``harness.models.hf.HFClassifier``),
loaded from a folder or a fine-tune stage's checkpoint (any method but setfit)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from harness import registry
from harness.models.kinds.base import LoadRequest, ModelKind, training_from_card

if TYPE_CHECKING:
    from harness.models.base import ModelAdapter
    from harness.models.sources import LocatedModel


@registry.model_kinds.register
class HFClassifierKind(ModelKind):
    name: ClassVar[str] = "hf-classifier"
    description: ClassVar[str] = "AutoModelForSequenceClassification: logits -> softmax"

    @classmethod
    def load(cls, found: LocatedModel, request: LoadRequest) -> ModelAdapter:
        from harness.models.hf import HFClassifier

        return HFClassifier.load(
            found.folder, name=found.name, source=found.source, label_names=request.label_names,
            device=request.device, max_length=request.max_length, batch_size=request.batch_size,
            precision=request.precision, allow_pickle=found.allow_pickle,
            trust_remote_code=found.trust_remote_code, model_card=found.model_card,
            training=training_from_card(found.model_card),
        )  # fmt: skip
