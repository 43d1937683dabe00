"""The ``setfit`` kind: a SetFit model — a sentence encoder (a sentence-transformers folder) and a
logistic-regression head over its pooled, normalised embeddings, as the fine-tuning stage's
``setfit`` method writes it (``harness.models.finetune.setfit_stage``).

The head is stored in ``head.safetensors`` (``coef`` (k, dim), ``intercept`` (k), ``classes``:
the label indices it was fitted on), never as setfit's pickled ``model_head.pkl``. Logits are
scikit-learn's decision function: binary ``[0, x·w + b]`` (whose softmax is the logistic
``predict_proba``), multiclass ``X W^T + b`` (multinomial); a label the head never saw gets
-inf (probability 0). Probabilities equal ``SetFitModel.predict_proba`` (tested).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from harness import registry
from harness.errors import ModelError
from harness.models.base import Encoded
from harness.models.kinds.adapter import ScoringAdapter, model_info
from harness.models.kinds.base import LoadRequest, ModelKind, training_from_card

HEAD_FILE = "head.safetensors"
MSG_NO_HEAD = "{folder}: no {file}; a setfit model folder is written by finetune.method 'setfit'"


class SetFitClassifier(ScoringAdapter):
    kind_name = "setfit"
    gradient_unavailable = (
        "the setfit kind is a sentence encoder with a logistic-regression head over pooled "
        "embeddings, not a sequence classifier forward"
    )

    def __init__(self, *, pooling: Any, coef: Any, intercept: Any, classes: list[int], **kw: Any) -> None:
        super().__init__(**kw)
        self._pooling, self._coef, self._intercept, self._classes = pooling, coef, intercept, classes

    def scores(self, encoded: Encoded) -> Any:
        from harness.models.kinds.encoder import embed

        x = embed(self.model, encoded, self._pooling, self.device).double()
        return head_logits(x, self._coef, self._intercept, self._classes, len(self.label_names))


def head_logits(x: Any, coef: Any, intercept: Any, classes: list[int], n_labels: int) -> Any:
    """scikit-learn's decision function laid out over all labels (see the module docstring)."""
    import torch

    z = x @ coef.to(x.device).T + intercept.to(x.device)
    if z.shape[1] == 1:
        z = torch.cat([torch.zeros_like(z), z], dim=1)
    out = torch.full((x.shape[0], n_labels), float("-inf"), dtype=z.dtype, device=z.device)
    out[:, classes] = z
    return out


def read_head(folder: Path) -> tuple[Any, Any, list[int]]:
    from safetensors.torch import load_file

    path = folder / HEAD_FILE
    if not path.is_file():
        raise ModelError(MSG_NO_HEAD.format(folder=folder, file=HEAD_FILE))
    tensors = load_file(str(path))
    return tensors["coef"].double(), tensors["intercept"].double(), [int(c) for c in tensors["classes"]]


@registry.model_kinds.register
class SetFitKind(ModelKind):
    name: ClassVar[str] = "setfit"
    description: ClassVar[str] = "SetFit: sentence encoder + logistic-regression head"

    @classmethod
    def load(cls, found: Any, request: LoadRequest) -> SetFitClassifier:
        from harness.models.hf import _label_names_from, resolve_device
        from harness.models.kinds.encoder import load_encoder

        module, tokenizer, pooling = load_encoder(found)
        names = _label_names_from(found.folder, module.config, request.label_names)
        coef, intercept, classes = read_head(found.folder)
        if max(classes, default=0) >= len(names) or coef.shape[0] not in (1, len(classes)):
            raise ModelError(f"{found.folder / HEAD_FILE}: head shape {tuple(coef.shape)} does not fit labels {names}")
        device = resolve_device(request.device)
        details = {**pooling.as_dict(), "head": "logistic regression", "head_classes": classes}
        info = model_info(found, kind=cls.name, module=module, label_names=names,
                          max_length=request.max_length, details=details,
                          training=training_from_card(found.model_card))  # fmt: skip
        return SetFitClassifier(
            module=module.to(device), tokenizer=tokenizer, label_names=tuple(names), device=device,
            max_length=request.max_length, batch_size=request.batch_size, info=info,
            pooling=pooling, coef=coef, intercept=intercept, classes=classes,
        )  # fmt: skip
