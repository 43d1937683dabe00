"""The ``setfit`` kind: a SetFit model — a sentence encoder (a sentence-transformers folder) and a
logistic-regression head over its pooled, normalised embeddings, as the fine-tuning stage's
``setfit`` method writes it (``harness.models.finetune.setfit_stage``).

The head is stored in ``head.safetensors`` (``coef`` (k, dim), ``intercept`` (k), ``classes``:
the label indices it was fitted on), never as setfit's pickled ``model_head.pkl``. Logits are
scikit-learn's decision function: binary ``[0, x·w + b]`` (whose softmax is the logistic
``predict_proba``), multiclass ``X W^T + b`` (multinomial). Probabilities equal
``SetFitModel.predict_proba`` (tested).

A label the head never saw (absent from its training set: scikit-learn's ``classes_`` lacks it)
gets logit -inf, so probability exactly 0: the head cannot predict it, and no finite number
would be its decision value (a large negative one would make up a value that gradients and IG
completeness then treat as real: constant, zero attributions, a "complete" explanation of
nothing). Every consumer of the -inf sees it handled: predictions and probabilities are
finite, records turn non-finite values into null, and the adapter lists the labels in
``absent_labels`` (``kinds.base.absent_labels``; the record in ``kind_details["absent_classes"]``)
so the explain suite says "not applicable" for an example whose target is one of them.
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
    """``model`` is an ``EmbeddingClassifier`` (encoder + pooling + logistic head): the scores
    are its logits, and the gradient suites differentiate through the same module."""

    kind_name = "setfit"
    gradient_unavailable = None
    absent_labels: tuple[int, ...] = ()  # label indices the head was not fitted on (logit -inf)

    def scores(self, encoded: Encoded) -> Any:
        from harness.models.kinds.embedding_head import encoded_logits

        return encoded_logits(self.model, encoded, self.device)


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
        from harness.models.kinds.embedding_head import EmbeddingClassifier, LogisticHead
        from harness.models.kinds.encoder import load_encoder

        module, tokenizer, pooling = load_encoder(found)
        names = _label_names_from(found.folder, module.config, request.label_names)
        coef, intercept, classes = read_head(found.folder)
        bad_classes = len(set(classes)) != len(classes) or len(classes) < 2 or min(classes) < 0
        if bad_classes or max(classes) >= len(names) or coef.shape[0] not in (1, len(classes)):
            raise ModelError(f"{found.folder / HEAD_FILE}: head shape {tuple(coef.shape)} does not fit labels {names}")
        device = resolve_device(request.device)
        absent = tuple(i for i in range(len(names)) if i not in classes)
        details = {**pooling.as_dict(), "head": "logistic regression", "head_classes": classes}
        if absent:  # left out otherwise, so records of heads that saw every class keep their bytes
            details["absent_classes"] = [names[i] for i in absent]
        info = model_info(found, kind=cls.name, module=module, label_names=names,
                          max_length=request.max_length, details=details,
                          training=training_from_card(found.model_card))  # fmt: skip
        head = LogisticHead(coef, intercept, classes, len(names))
        classifier = EmbeddingClassifier(module, pooling, head).to(device).eval()
        adapter = SetFitClassifier(
            module=classifier, tokenizer=tokenizer, label_names=tuple(names), device=device,
            max_length=request.max_length, batch_size=request.batch_size, info=info,
        )  # fmt: skip
        adapter.absent_labels = absent
        return adapter
