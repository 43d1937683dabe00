"""A sentence encoder and a differentiable head as one torch module that looks, to the gradient
suites, like a Hugging Face sequence classifier: ``get_input_embeddings()``, ``forward(input_ids=
| inputs_embeds=, attention_mask=, token_type_ids=)`` returning an object with ``.logits``,
``config``, ``base_model`` (the encoder, so the randomised-head sanity check re-initialises the
head only) and switching to eval mode, ``parameters``.

Why a wrapper rather than a second code path: the ``setfit`` and ``zero-shot-embedding`` kinds
compute their scores *through this module* (``scores`` calls it), so the logits the explain suite
differentiates are, by construction, the logits the kind predicts with — same pooling, same
normalisation, same head, same temperature — and cannot drift apart. Imported only inside a
kind's ``load`` (it imports torch at module level).

Heads:
- ``LogisticHead``: scikit-learn's decision function over all labels (binary ``[0, x·w + b]``,
  multiclass ``X W^T + b``, ``-inf`` for a label the head never saw), in float64 as stored;
- ``CosineHead``: cosine similarity of the (re-)normalised embedding to fixed, normalised label
  description embeddings, divided by the temperature.
The head weights are ``nn.Parameter`` with ``requires_grad=False``: the attribution methods
differentiate with respect to the input embeddings only, and the sanity check can find them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from harness.models.kinds.encoder import Pooling, pool


@dataclass
class ClassifierOutput:
    """What ``forward`` returns: the ``.logits`` a transformers classifier output carries."""

    logits: Any


class LogisticHead(torch.nn.Module):
    """scikit-learn ``LogisticRegression.decision_function`` laid out over every label."""

    def __init__(self, coef: Any, intercept: Any, classes: list[int], n_labels: int) -> None:
        super().__init__()
        self.coef = torch.nn.Parameter(coef.detach().double().clone(), requires_grad=False)
        self.intercept = torch.nn.Parameter(
            intercept.detach().double().clone(), requires_grad=False
        )
        self.classes, self.n_labels = list(classes), n_labels

    def forward(self, x: Any) -> Any:
        from harness.models.kinds.setfit_kind import head_logits

        return head_logits(x.double(), self.coef, self.intercept, self.classes, self.n_labels)


class CosineHead(torch.nn.Module):
    """cos(text, description) / temperature for each label description."""

    def __init__(self, label_matrix: Any, temperature: float) -> None:
        super().__init__()
        self.labels = torch.nn.Parameter(label_matrix.detach().clone(), requires_grad=False)
        self.temperature = float(temperature)

    def forward(self, x: Any) -> Any:
        text = torch.nn.functional.normalize(x, dim=1)
        return text @ self.labels.T / self.temperature


class EmbeddingClassifier(torch.nn.Module):
    """encoder -> pooling (+ normalise) -> head, with a sequence classifier's interface."""

    def __init__(self, encoder: Any, pooling: Pooling, head: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.pooling = pooling

    @property
    def base_model(self) -> Any:
        """The encoder: everything that is not the head (the sanity check's "base")."""
        return self.encoder

    @property
    def config(self) -> Any:
        """The encoder's transformers config (layers and width for the FLOPs estimate)."""
        return self.encoder.config

    @property
    def device(self) -> Any:
        return next(self.encoder.parameters()).device

    def get_input_embeddings(self) -> Any:
        return self.encoder.get_input_embeddings()

    def embed(
        self,
        *,
        attention_mask: Any,
        input_ids: Any = None,
        inputs_embeds: Any = None,
        token_type_ids: Any = None,
    ) -> Any:
        """Pooled sentence embeddings (float32), as ``encoder.embed`` computes them."""
        given = {
            "input_ids": input_ids,
            "inputs_embeds": inputs_embeds,
            "token_type_ids": token_type_ids,
        }
        kwargs = {k: v for k, v in given.items() if v is not None}
        hidden = self.encoder(attention_mask=attention_mask, **kwargs).last_hidden_state
        return pool(hidden.float(), attention_mask, self.pooling)

    def forward(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        inputs_embeds: Any = None,
    ) -> ClassifierOutput:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        if attention_mask is None:
            ref = input_ids if input_ids is not None else inputs_embeds[..., 0]
            attention_mask = torch.ones(ref.shape[:2], dtype=torch.long, device=ref.device)
        x = self.embed(
            attention_mask=attention_mask, input_ids=input_ids, inputs_embeds=inputs_embeds,
            token_type_ids=token_type_ids,
        )  # fmt: skip
        return ClassifierOutput(logits=self.head(x))


def encoded_logits(model: EmbeddingClassifier, encoded: Any, device: str) -> Any:
    """The classifier's logits on a padded batch (the kinds' ``scores``)."""
    return model(
        input_ids=encoded.input_ids.to(device), attention_mask=encoded.attention_mask.to(device)
    ).logits
