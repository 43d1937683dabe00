"""Zero-shot classifiers: no training at all.

``zero-shot-embedding``: every label has a description (``"a negative review"``; from
``descriptions`` or the ``template``), embedded once by a sentence encoder; a text's class logits
are its cosine similarities to the descriptions divided by ``temperature`` (softmax gives the
probabilities). The temperature is not fitted on anything — it is a set value, recorded.

``zero-shot-nli``: transformers' zero-shot-classification pipeline semantics (single label):
every (text, hypothesis) pair, the hypothesis being ``hypothesis_template`` filled with the
label's words, goes through an NLI model; the class logits are the entailment logits, so the
softmax over labels is the pipeline's score (tested against the pipeline). The entailment index
is the config label starting with "entail", as in the pipeline. The text is truncated first
(the pipeline's ``only_first``). Its ``model`` is a ``spliced.SplicedClassifier`` over the
premise's own tokens (the K hypotheses spliced in as embeddings: K pairs per text in one batched
forward), so the gradient suites attribute the entailment scores to the premise's tokens.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, PositiveFloat, field_validator

from harness import registry
from harness.errors import ConfigError, ModelError
from harness.models.base import Encoded
from harness.models.kinds.adapter import ScoringAdapter, model_info, quiet_transformers
from harness.models.kinds.base import KindParams, LoadRequest, ModelKind
from harness.models.kinds.template import PIECES_DEPARTURE, content_ids, piece_ids, probe_template

MSG_UNKNOWN_LABEL = "model.params.{key}: {label!r} is not a dataset label (labels: {labels})"
MSG_NO_ENTAILMENT = (
    "{folder}: no label starting with 'entail' in the model's id2label {labels}; set "
    "model.params.entailment_label"
)
MSG_TEMPLATE = "model.params.{key}: {template!r} must contain {field}"


def check_labels(mapping: dict[str, str] | None, labels: tuple[str, ...], key: str) -> None:
    for label in mapping or {}:
        if label not in labels:
            raise ConfigError(MSG_UNKNOWN_LABEL.format(key=f"{key}.{label}", label=label, labels=list(labels)))


class EmbeddingParams(KindParams):
    descriptions: dict[str, str] | None = Field(
        default=None, description="Label -> description embedded for it; others use template."
    )
    template: str = Field(default="a {label} review", description="Description of a label without one.")
    temperature: PositiveFloat = Field(
        default=0.05, description="Cosine similarities are divided by it (not fitted; recorded)."
    )

    @field_validator("template")
    @classmethod
    def _has_label(cls, value: str) -> str:
        if "{label}" not in value:
            raise ValueError(MSG_TEMPLATE.format(key="template", template=value, field="{label}"))
        return value


class EmbeddingZeroShot(ScoringAdapter):
    """``model`` is an ``EmbeddingClassifier`` (encoder + pooling + cosine head / temperature):
    the scores are its logits, and the gradient suites differentiate through the same module."""

    kind_name = "zero-shot-embedding"
    gradient_unavailable = None

    def scores(self, encoded: Encoded) -> Any:
        from harness.models.kinds.embedding_head import encoded_logits

        return encoded_logits(self.model, encoded, self.device)


@registry.model_kinds.register
class ZeroShotEmbeddingKind(ModelKind):
    name: ClassVar[str] = "zero-shot-embedding"
    description: ClassVar[str] = "cosine similarity to embedded label descriptions -> softmax(/T)"
    Params: ClassVar[type[KindParams]] = EmbeddingParams
    trains: ClassVar[bool] = False

    @classmethod
    def load(cls, found: Any, request: LoadRequest) -> EmbeddingZeroShot:
        import torch

        from harness.models.hf import resolve_device
        from harness.models.kinds.adapter import pad_rows, plain_rows
        from harness.models.kinds.embedding_head import CosineHead, EmbeddingClassifier
        from harness.models.kinds.encoder import embed, load_encoder

        p: EmbeddingParams = request.params
        check_labels(p.descriptions, request.label_names, "descriptions")
        descriptions = [
            (p.descriptions or {}).get(name) or p.template.format(label=name) for name in request.label_names
        ]
        module, tokenizer, pooling = load_encoder(found)
        device = resolve_device(request.device)
        module.to(device)
        rows, _ = plain_rows(tokenizer, descriptions, request.max_length)
        with torch.no_grad():  # not inference_mode: the logits may be computed with autograd on
            labels = embed(module, pad_rows(tokenizer, rows), pooling, device)
            labels = torch.nn.functional.normalize(labels, dim=1)
        details = {
            "descriptions": dict(zip(request.label_names, descriptions, strict=True)),
            "temperature": p.temperature, "temperature_fitted": False, **pooling.as_dict(),
            "scores": "cosine(text, description) / temperature, softmax over labels",
        }  # fmt: skip
        info = model_info(found, kind=cls.name, module=module, label_names=request.label_names,
                          max_length=request.max_length, details=details)  # fmt: skip
        classifier = EmbeddingClassifier(module, pooling, CosineHead(labels, p.temperature)).eval()
        return EmbeddingZeroShot(
            module=classifier, tokenizer=tokenizer, label_names=request.label_names, device=device,
            max_length=request.max_length, batch_size=request.batch_size, info=info,
        )  # fmt: skip


class NliParams(KindParams):
    hypothesis_template: str = Field(
        default="This example is {}.", description="The pipeline's template: '{}' is the label."
    )
    label_words: dict[str, str] | None = Field(
        default=None, description="Label -> the words put in the hypothesis (default: its name)."
    )
    entailment_label: str | None = Field(
        default=None, description="The model's entailment label; default: the one starting 'entail'."
    )

    @field_validator("hypothesis_template")
    @classmethod
    def _has_slot(cls, value: str) -> str:
        if "{}" not in value:
            raise ValueError(MSG_TEMPLATE.format(key="hypothesis_template", template=value, field="{}"))
        return value


class NliZeroShot(ScoringAdapter):
    """``model`` is a ``SplicedClassifier``: the premise (the text's own tokens) is spliced into
    one (premise, hypothesis_k) pair per label inside its forward, and its logits are the
    entailment logits, so the gradient suites differentiate the scores the kind predicts with."""

    kind_name = "zero-shot-nli"

    def __init__(self, *, budget: int, **kw: Any) -> None:
        super().__init__(**kw)
        self._budget = budget
        self.text_budget = budget  # the explain suite attributes to these text tokens only
        self.gradient_unavailable = self._module.gradient_unavailable

    def tokenize(self, texts: Any) -> tuple[list[list[int]], list[bool]]:
        return content_ids(self.tokenizer, texts, self._budget)

    def collate(self, rows: Any, truncated: Any = None) -> Encoded:
        from harness.models.kinds.spliced import empty_safe_collate

        encoded: Encoded = empty_safe_collate(self.tokenizer, rows, truncated)
        return encoded

    def scores(self, encoded: Encoded) -> Any:
        return self.model(input_ids=encoded.input_ids.to(self.device),
                          attention_mask=encoded.attention_mask.to(self.device)).logits  # fmt: skip


def nli_classifier(module: Any, tokenizer: Any, template: Any, hypotheses: list[list[int]], entail: int) -> Any:
    """prefix + premise + middle (segment A), hypothesis_k + suffix (segment B), as the pipeline
    pairs them; the ``SplicedClassifier`` reads the entailment logit of each pair."""
    from harness.models.kinds.spliced import Splice, SplicedClassifier
    from harness.models.kinds.template import PROBE_A

    a, b = template.type_a, template.type_b
    tails = [[*template.pair_middle, *h, *template.pair_suffix] for h in hypotheses]
    types = [[a] * len(template.pair_middle) + [b] * (len(h) + len(template.pair_suffix)) for h in hypotheses]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    splice = Splice(head=tuple(template.pair_prefix), tails=tuple(tuple(t) for t in tails), pad_id=int(pad),
                    types=bool(template.has_types), head_type=a, text_type=a,
                    tail_types=tuple(tuple(t) for t in types))  # fmt: skip
    classifier = SplicedClassifier(module, splice, readout="entailment", entail=entail).eval()
    classifier.probe(piece_ids(tokenizer, PROBE_A))
    return classifier


@registry.model_kinds.register
class ZeroShotNliKind(ModelKind):
    name: ClassVar[str] = "zero-shot-nli"
    description: ClassVar[str] = "NLI entailment of 'This example is {label}.' (zero-shot pipeline)"
    Params: ClassVar[type[KindParams]] = NliParams
    trains: ClassVar[bool] = False

    @classmethod
    def load(cls, found: Any, request: LoadRequest) -> NliZeroShot:
        from harness.models.hf import resolve_device
        from harness.models.kinds.prompted import load_lm

        p: NliParams = request.params
        check_labels(p.label_words, request.label_names, "label_words")
        module, tokenizer = load_lm(found, "sequence-classification")
        entail = _entailment_index(module.config, p.entailment_label, found.folder)
        template = probe_template(tokenizer, "model")
        words = [(p.label_words or {}).get(n, n) for n in request.label_names]
        hypotheses = [piece_ids(tokenizer, p.hypothesis_template.format(w)) for w in words]
        budget = request.max_length - template.pair_overhead - max(len(h) for h in hypotheses)
        if budget < 1:
            raise ConfigError(f"model.max_length: {request.max_length} leaves no room for the text "
                              "beside the longest hypothesis")  # fmt: skip
        device = resolve_device(request.device)
        details = {
            "hypothesis_template": p.hypothesis_template,
            "hypotheses": dict(zip(request.label_names, [p.hypothesis_template.format(w) for w in words], strict=True)),
            "hypothesis_ids": dict(zip(request.label_names, hypotheses, strict=True)),
            "entailment_index": entail, "special_template": template.as_dict(),
            "departures": [PIECES_DEPARTURE, "single-label only (softmax of entailment over labels)"],
        }  # fmt: skip
        classifier = nli_classifier(module.to(device), tokenizer, template, hypotheses, entail)
        details["forward"] = classifier.as_dict()
        info = model_info(found, kind=cls.name, module=module, label_names=request.label_names,
                          max_length=request.max_length, details=details)  # fmt: skip
        return NliZeroShot(
            module=classifier, tokenizer=tokenizer, label_names=request.label_names,
            device=device, max_length=request.max_length, batch_size=request.batch_size, info=info,
            budget=budget,
        )  # fmt: skip


def _entailment_index(config: Any, name: str | None, folder: Any) -> int:
    id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
    if name is not None:
        for i, label in id2label.items():
            if label == name:
                return i
        raise ModelError(f"model.params.entailment_label: {name!r} is not in {sorted(id2label.values())}")
    for i, label in sorted(id2label.items()):
        if label.lower().startswith("entail"):
            return i
    quiet_transformers()
    raise ModelError(MSG_NO_ENTAILMENT.format(folder=folder, labels=id2label))
