"""Prompted language models as classifiers.

``masked-lm`` (PET, Schick & Schütze 2021): the text is put in a ``pattern`` with one mask
(``"{text} It was {mask}."``); a label's score is the log-probability of its verbalizer word at
the mask, ``log softmax(MLM logits at the mask)[word]``. Each word must be one token.

``causal-lm``: a label's score is the log-likelihood of its verbalised answer (``" positive"``,
any number of tokens) after the ``prompt`` (``"Review: {text}\\nSentiment:"``), optionally after
``demonstrations`` from a training split (drawn with the run seed, recorded by id), summed over
the answer's tokens (``normalize: mean`` divides by their number).

Either way the probabilities are the softmax of the label scores (the label words' probabilities
renormalised over the labels). ``calibrate: true`` applies contextual calibration (Zhao et al.
2021): the renormalised probabilities ``p_cf`` of content-free inputs ("N/A", "", "[MASK]") are
averaged and every prediction is divided by them, ``q ∝ p / p_cf`` (W = diag(p_cf)^-1, b = 0);
``p_cf`` is recorded. Prompts and verbalizers are ``model.params``, hence in the config digest.

Gradients: ``adapter.model`` is a ``spliced.SplicedClassifier`` over the text's own tokens (the
pattern, prompt, demonstrations and answers are spliced in as embeddings inside its forward, and
the calibration offset is subtracted there), and ``scores`` calls it: the explain suite's
Integrated Gradients and GradientShap attribute the predicted scores to the text's tokens only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, NonNegativeInt

from harness import registry
from harness.errors import ConfigError, ModelError
from harness.models.base import Encoded
from harness.models.kinds.adapter import (
    ScoringAdapter,
    load_tokenizer,
    model_info,
    quiet_transformers,
)
from harness.models.kinds.base import KindParams, LoadRequest, ModelKind
from harness.models.kinds.template import (
    PIECES_DEPARTURE,
    content_ids,
    pattern_fields,
    piece_ids,
    probe_template,
)
from harness.models.kinds.zero_shot import check_labels

CONTENT_FREE = ["N/A", "", "[MASK]"]
MSG_ONE_TOKEN = (
    "model.params.verbalizer.{label}: {word!r} is {n} tokens for this tokenizer ({tokens}); the "
    "masked-LM kind needs one token per label word"
)
MSG_NO_MASK = "{folder}: the tokenizer has no mask token; the masked-lm kind needs one"
MSG_NO_ROOM = "model.max_length: {max_length} leaves no room for the text ({overhead} tokens of prompt)"
MSG_FEW_DEMOS = "model.params.demonstrations: {k} asked for, split {split!r} has {n} examples"


class PromptParams(KindParams):
    verbalizer: dict[str, str] | None = Field(
        default=None, description="Label -> its word / answer (default: the label's name)."
    )
    calibrate: bool = Field(default=False, description="Contextual calibration (Zhao et al. 2021).")
    content_free: list[str] = Field(
        default_factory=lambda: list(CONTENT_FREE), min_length=1,
        description="Content-free inputs whose mean prediction calibration divides out.",
    )


class MaskedLMParams(PromptParams):
    pattern: str = Field(default="{text} It was {mask}.", description="PET pattern: {text}, {mask}.")


class CausalLMParams(PromptParams):
    prompt: str = Field(default="Review: {text}\nSentiment:", description="Prompt with {text}.")
    normalize: Literal["sum", "mean"] = Field(
        default="sum", description="Answer log-likelihood summed, or averaged over its tokens."
    )
    demonstrations: NonNegativeInt = Field(default=0, description="Solved examples before the prompt.")
    demonstration_split: str = Field(default="train", description="Split the demonstrations come from.")
    separator: str = Field(default="\n\n", description="Between demonstrations and the prompt.")


def load_lm(found: Any, head: str) -> tuple[Any, Any]:
    """(model in eval mode, tokenizer) for ``head``: 'masked-lm', 'causal-lm' or
    'sequence-classification', after the folder's safety checks; never the network."""
    import transformers

    from harness.models.hf import check_model_folder

    weights = check_model_folder(found.folder, allow_pickle=found.allow_pickle, trust_remote_code=found.trust_remote_code)
    quiet_transformers()
    auto = {"masked-lm": transformers.AutoModelForMaskedLM, "causal-lm": transformers.AutoModelForCausalLM,
            "sequence-classification": transformers.AutoModelForSequenceClassification}[head]  # fmt: skip
    try:
        model = auto.from_pretrained(
            found.folder, local_files_only=True, trust_remote_code=found.trust_remote_code,
            use_safetensors=all(w.suffix == ".safetensors" for w in weights),
        )  # fmt: skip
    except (OSError, ValueError) as exc:
        raise ModelError(f"{found.folder}: cannot load it as a {head} model ({exc})") from None
    return model.eval(), load_tokenizer(found.folder, trust_remote_code=found.trust_remote_code)


class PromptedLM(ScoringAdapter):
    """Label scores from an LM over prefix + text + suffix (+ answer): ``model`` is a
    ``SplicedClassifier`` over the text's own tokens, and the scores are its logits, so the
    gradient suites differentiate the scores the kind predicts with."""

    def __init__(self, *, budget: int, **kw: Any) -> None:
        super().__init__(**kw)
        self._budget = budget
        self.text_budget = budget  # the explain suite attributes to these text tokens only
        self.gradient_unavailable = self._module.gradient_unavailable

    def tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        return content_ids(self.tokenizer, texts, self._budget)

    def scores(self, encoded: Encoded) -> Any:
        return self.model(input_ids=encoded.input_ids.to(self.device),
                          attention_mask=encoded.attention_mask.to(self.device)).logits  # fmt: skip

    def set_calibration(self, texts: Sequence[str]) -> list[float]:
        """Contextual calibration from content-free ``texts``; returns p_cf."""
        import torch

        self.model.set_bias(None)
        with torch.no_grad():  # not inference_mode: the bias enters forwards that autograd records
            p = torch.softmax(self.scores(self.collate(self.tokenize(texts)[0] or [[]])).double(), dim=-1)
        p_cf = p.mean(dim=0)
        self.model.set_bias(torch.log(p_cf).float())
        return [float(v) for v in p_cf]

    def collate(self, rows: Sequence[Sequence[int]], truncated: Sequence[bool] | None = None) -> Encoded:
        from harness.models.kinds.spliced import empty_safe_collate

        encoded: Encoded = empty_safe_collate(self.tokenizer, rows, truncated)
        return encoded


class MaskedLM(PromptedLM):
    kind_name = "masked-lm"


class CausalLM(PromptedLM):
    kind_name = "causal-lm"


def spliced(module: Any, tokenizer: Any, head: list[int], tails: list[list[int]], **readout: Any) -> Any:
    """The kind's ``SplicedClassifier`` (probed: embeddings spliced where the model allows)."""
    from harness.models.kinds.spliced import Splice, SplicedClassifier
    from harness.models.kinds.template import PROBE_A

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    splice = Splice(head=tuple(head), tails=tuple(tuple(t) for t in tails), pad_id=int(pad))
    classifier = SplicedClassifier(module, splice, **readout).eval()
    classifier.probe(piece_ids(tokenizer, PROBE_A))
    return classifier


def _split(tokenizer: Any, pattern: str, slots: Sequence[str], where: str) -> tuple[list[int], list[int], list[str]]:
    """The ids before and after {text} (the mask slot becomes the mask id)."""
    pieces = pattern_fields(pattern, slots, where)
    before: list[int] = []
    after: list[int] = []
    seen_text = False
    for literal, field in pieces:
        next_is_mask = field == "mask"
        target = after if seen_text else before
        target += piece_ids(tokenizer, literal.rstrip() if next_is_mask else literal)
        if field == "text":
            seen_text = True
        elif field == "mask":
            (after if seen_text else before).append(int(tokenizer.mask_token_id))
    return before, after, [p for p, _ in pieces]


@registry.model_kinds.register
class MaskedLMKind(ModelKind):
    name: ClassVar[str] = "masked-lm"
    description: ClassVar[str] = "PET pattern + verbalizer: log p(label word at the mask)"
    Params: ClassVar[type[KindParams]] = MaskedLMParams
    trains: ClassVar[bool] = False

    @classmethod
    def load(cls, found: Any, request: LoadRequest) -> MaskedLM:
        p: MaskedLMParams = request.params
        check_labels(p.verbalizer, request.label_names, "verbalizer")
        module, tokenizer = load_lm(found, "masked-lm")
        if tokenizer.mask_token_id is None:
            raise ModelError(MSG_NO_MASK.format(folder=found.folder))
        template = probe_template(tokenizer, "model")
        if "{mask}" in p.pattern and p.pattern.index("{mask}") < p.pattern.index("{text}"):
            raise ConfigError("model.params.pattern: put {mask} after {text} (the text is cut at its end)")
        before, after, _ = _split(tokenizer, p.pattern, ["text", "mask"], "model.params.pattern")
        spaced = p.pattern.split("{mask}")[0][-1:].isspace()
        words = {n: (p.verbalizer or {}).get(n, n) for n in request.label_names}
        word_ids = [_one_token(tokenizer, label, w, spaced) for label, w in words.items()]
        budget = _budget(request.max_length, template.single_overhead + len(before) + len(after))
        classifier = spliced(
            _to(module, request), tokenizer, [*template.single_prefix, *before], [[*after, *template.single_suffix]],
            readout="mask", mask_at=after.index(int(tokenizer.mask_token_id)), word_ids=word_ids,
        )  # fmt: skip
        adapter = MaskedLM(
            module=classifier, tokenizer=tokenizer, label_names=request.label_names,
            device=_device(request), max_length=request.max_length, batch_size=request.batch_size,
            info=None, budget=budget,  # type: ignore[arg-type]
        )  # fmt: skip
        details = {"pattern": p.pattern, "verbalizer": words,
                   "verbalizer_ids": dict(zip(request.label_names, word_ids, strict=True)),
                   "pattern_ids": {"before_text": before, "after_text": after}}  # fmt: skip
        _finish(adapter, found, cls.name, module, request, p, details)
        return adapter


@registry.model_kinds.register
class CausalLMKind(ModelKind):
    name: ClassVar[str] = "causal-lm"
    description: ClassVar[str] = "log-likelihood of each verbalised answer after a prompt"
    Params: ClassVar[type[KindParams]] = CausalLMParams
    trains: ClassVar[bool] = False

    @classmethod
    def load(cls, found: Any, request: LoadRequest) -> CausalLM:
        p: CausalLMParams = request.params
        check_labels(p.verbalizer, request.label_names, "verbalizer")
        module, tokenizer = load_lm(found, "causal-lm")
        template = probe_template(tokenizer, "model")
        answers_text = {n: (p.verbalizer or {}).get(n, " " + n) for n in request.label_names}
        answers = [piece_ids(tokenizer, a) for a in answers_text.values()]
        if any(not a for a in answers):
            raise ConfigError("model.params.verbalizer: every answer needs at least one token")
        demos, demo_ids = _demonstrations(p, request, answers_text)
        before, after, _ = _split(tokenizer, demos + p.prompt, ["text"], "model.params.prompt")
        budget = _budget(request.max_length, len(template.single_prefix) + len(before) + len(after) + max(map(len, answers)))
        classifier = spliced(
            _to(module, request), tokenizer, [*template.single_prefix, *before], [[*after, *a] for a in answers],
            readout="answer", answers=answers, mean=p.normalize == "mean",
        )  # fmt: skip
        adapter = CausalLM(
            module=classifier, tokenizer=tokenizer, label_names=request.label_names,
            device=_device(request), max_length=request.max_length, batch_size=request.batch_size,
            info=None, budget=budget,  # type: ignore[arg-type]
        )  # fmt: skip
        details = {"prompt": p.prompt, "verbalizer": answers_text, "normalize": p.normalize,
                   "answer_ids": dict(zip(request.label_names, answers, strict=True)),
                   "demonstration_ids": demo_ids, "demonstration_split": p.demonstration_split if demo_ids else None}  # fmt: skip
        _finish(adapter, found, cls.name, module, request, p, details)
        return adapter


def _demonstrations(p: CausalLMParams, request: LoadRequest, answers: dict[str, str]) -> tuple[str, list[str]]:
    """The demonstrations' text (prompt filled in + answer, then the separator) and their ids:
    a seeded sample (``Dataset.sample``) of the split."""
    if not p.demonstrations:
        return "", []
    if request.bundle is None or p.demonstration_split not in request.bundle.splits:
        splits = list(request.bundle.splits) if request.bundle is not None else []
        raise ConfigError(f"model.params.demonstration_split: no split {p.demonstration_split!r} (splits: {splits})")
    split = request.bundle.splits[p.demonstration_split]
    if len(split) < p.demonstrations:
        raise ConfigError(MSG_FEW_DEMOS.format(k=p.demonstrations, split=p.demonstration_split, n=len(split)))
    chosen = split.sample(p.demonstrations, request.seed)
    parts = []
    for text, label in zip(chosen.texts, chosen.labels, strict=True):
        filled = p.prompt.replace("{text}", text.replace("{", "{{").replace("}", "}}"))
        parts.append(filled + answers[chosen.label_names[label]].replace("{", "{{").replace("}", "}}"))
    return "".join(part + p.separator.replace("{", "{{").replace("}", "}}") for part in parts), list(chosen.ids)


def _one_token(tokenizer: Any, label: str, word: str, spaced: bool) -> int:
    ids = piece_ids(tokenizer, (" " + word) if spaced else word)
    if len(ids) != 1:
        tokens = tokenizer.convert_ids_to_tokens(ids)
        raise ConfigError(MSG_ONE_TOKEN.format(label=label, word=word, n=len(ids), tokens=tokens))
    return ids[0]


def _budget(max_length: int, overhead: int) -> int:
    if max_length - overhead < 1:
        raise ConfigError(MSG_NO_ROOM.format(max_length=max_length, overhead=overhead))
    return max_length - overhead


def _device(request: LoadRequest) -> str:
    from harness.models.hf import resolve_device

    return resolve_device(request.device)


def _to(module: Any, request: LoadRequest) -> Any:
    return module.to(_device(request))


def _finish(adapter: PromptedLM, found: Any, kind: str, module: Any, request: LoadRequest,
            p: PromptParams, details: dict[str, Any]) -> None:  # fmt: skip
    """Calibrate when asked, then the record's identity (with p_cf)."""
    details["calibration"] = None
    if p.calibrate:
        details["calibration"] = {"method": "contextual (Zhao et al. 2021)", "content_free": list(p.content_free),
                                  "p_cf": adapter.set_calibration(p.content_free)}  # fmt: skip
    details["departures"] = [PIECES_DEPARTURE]
    details["forward"] = adapter.model.as_dict()
    adapter._info = model_info(found, kind=kind, module=module, label_names=request.label_names,
                               max_length=request.max_length, details=details)  # fmt: skip
