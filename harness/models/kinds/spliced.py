"""The prompted and NLI kinds as one torch module over the TEXT's own tokens, with a sequence
classifier's interface (as ``embedding_head.EmbeddingClassifier`` is for the encoder kinds):
``get_input_embeddings()``, ``forward(input_ids= | inputs_embeds=, attention_mask=)`` returning
``.logits`` of shape (batch, n_labels), ``config``, ``base_model``, ``parameters``.

Why: the gradient suites attribute to the text's tokens only. The fixed pieces a kind puts
around the text — the special tokens, the PET pattern with its mask, the prompt and its
demonstrations, an NLI hypothesis, a verbalised answer — are spliced in *inside* ``forward``, as
embeddings: the text's embeddings come from ``get_input_embeddings()`` (the call Captum's
``LayerIntegratedGradients`` hooks), the pieces' embeddings from the same table's ``forward``
called directly (no hook fires, so the pieces never move along the integration path and
receive no attribution, yet they are in every forward). A baseline therefore replaces text
tokens only, never the pattern. The kinds compute their predicted scores through this module,
so the explained scores are the predicted ones by construction.

Layout: a row is ``head + text + tail_k + padding`` for each of K tails (K = 1 for the
masked LM: tail = the pattern after the text, with its mask; K = labels for NLI: tail_k =
middle specials + hypothesis_k + suffix, and for the causal LM: tail_k = the prompt after the
text + answer_k). The text batch is right-padded (mask 1 on its first n tokens); rows are built
with one ``gather`` over [head | text | the row's tail | pad], so the whole batch (and Captum's
examples x integration nodes) is one model forward of B*K rows (``forward_tokens``).

Readouts (``readout``): ``entailment`` — the NLI logit of the entailment class per tail;
``mask`` — log softmax of the MLM logits at the mask, at the label words; ``answer`` — the
summed (``mean``: averaged) log-probabilities of each answer's tokens. The LMs' output head
(vocabulary projection) runs at those positions only when a load-time probe shows it equals the
model's own forward (``lm_head``); else the full logits are sliced. Contextual calibration is a
constant offset per label (``bias``, log p_cf), subtracted last.

A model whose forward refuses ``inputs_embeds`` (BART's sequence classifier does) or disagrees
with its own ``input_ids`` forward is spliced as ids instead (``probe``): predictions are
unchanged and ``gradient_unavailable`` says why. Imported only inside a kind's ``load``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from harness.models.kinds.embedding_head import ClassifierOutput

PROBE_TOLERANCE = 1e-4
# Output heads (vocabulary projection included) of common LMs: BERT/DeBERTa, RoBERTa/GPT-2/
# Llama/MPNet, ALBERT. Each is used only when the probe shows head(base_model(x)) == model(x).
LM_HEADS = ("cls", "lm_head", "predictions")
MSG_NO_EMBEDS = (
    "{model}'s forward does not take inputs_embeds equal to its input_ids ({why}); the pattern "
    "cannot be spliced around the text's embeddings"
)
MSG_NOT_RIGHT_PADDED = (
    "attention_mask: the text batch must be right-padded (1s, then 0s) on every row"
)
MSG_NO_CONTEXT = (
    "causal-lm: an empty text leaves the first answer token without context (the prompt puts no "
    "token before it and the tokenizer adds no BOS); put words before {text} or after it"
)


@dataclass(frozen=True)
class Splice:
    """The fixed pieces around the text: one ``head``, K ``tails``, and their token types
    (``types=False``: the model gets no token_type_ids, as the kinds' id forwards did)."""

    head: tuple[int, ...]
    tails: tuple[tuple[int, ...], ...]
    pad_id: int
    types: bool = False
    head_type: int = 0
    text_type: int = 0
    tail_types: tuple[tuple[int, ...], ...] = ()


class SplicedClassifier(torch.nn.Module):
    """Text tokens in, the kind's class scores out (see the module docstring)."""

    fixed_ids: torch.Tensor  # head + every tail padded to the longest + one pad (buffers)
    fixed_types: torch.Tensor
    tail_lengths: torch.Tensor
    bias: torch.Tensor  # the calibration offset per label

    def __init__(
        self, model: Any, splice: Splice, *, readout: str, entail: int = 0,
        mask_at: int = 0, word_ids: Sequence[int] = (), answers: Sequence[Sequence[int]] = (),
        mean: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.model = model
        self.splice, self.readout = splice, readout
        self.entail, self.mask_at, self.mean = entail, mask_at, mean
        self.word_ids = [int(w) for w in word_ids]
        self.answers = [[int(t) for t in a] for a in answers]
        self.splice_embeddings = True
        self.gradient_unavailable: str | None = None
        self.lm_head: str | None = None  # the output head run at the readout positions only
        tail_len = max((len(t) for t in splice.tails), default=0)
        fixed = [
            *splice.head,
            *(tok for t in splice.tails for tok in _padded(t, tail_len, splice.pad_id)),
            splice.pad_id,
        ]
        types = [splice.head_type] * len(splice.head)
        for k, t in enumerate(splice.tails):
            row = list(splice.tail_types[k]) if splice.tail_types else [0] * len(t)
            types += _padded(row, tail_len, 0)
        self.register_buffer("fixed_ids", torch.tensor(fixed, dtype=torch.long), persistent=False)
        self.register_buffer(
            "fixed_types", torch.tensor([*types, 0], dtype=torch.long), persistent=False
        )
        self.register_buffer(
            "tail_lengths",
            torch.tensor([len(t) for t in splice.tails], dtype=torch.long),
            persistent=False,
        )
        self.register_buffer("bias", torch.zeros(self.n_labels), persistent=False)
        self.tail_len = tail_len
        self.to(self.device)  # the buffers where the model is (a GPU model: no host round trip)

    # ------------------------------------------------------------ a classifier's interface
    @property
    def n_labels(self) -> int:
        return len(self.word_ids) if self.readout == "mask" else len(self.splice.tails)

    @property
    def base_model(self) -> Any:
        """The LM's body: everything but its output head (the sanity check's "base")."""
        return self.model.base_model

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def get_input_embeddings(self) -> Any:
        return self.model.get_input_embeddings()

    @property
    def attributed_tokens(self) -> str:
        """For the explain record: what is attributed, and what is held fixed."""
        fixed = {
            "entailment": "the pair's special tokens and each label's hypothesis",
            "mask": "the special tokens and the pattern with its mask",
            "answer": "the prompt, its demonstrations and each label's answer",
        }[self.readout]
        return (
            f"the text's own tokens only; {fixed} are spliced around them inside the model's "
            "forward, equal at input and baseline, never attributed"
        )

    def as_dict(self) -> dict[str, Any]:
        """For the record's kind details: how the forward is spliced, and why no gradients."""
        from harness.models.cls_forward import forward_path

        classifier = forward_path(self.model)[0] if self.readout == "entailment" else None
        return {
            "splice": "embeddings" if self.splice_embeddings else "ids",
            "output_head_at_readout_only": self.lm_head,
            "classifier_forward": classifier,  # the [CLS]-only last layer where it is verified
            "gradient_unavailable": self.gradient_unavailable,
        }

    def forward_tokens(self, seq_len: int) -> int:
        """Tokens one forward runs for a text of ``seq_len`` tokens: K rows of head + text + tail
        (the explain engine sizes its passes by it)."""
        return len(self.splice.tails) * (len(self.splice.head) + seq_len + self.tail_len)

    def set_bias(self, bias: Any) -> None:
        """The calibration offset per label (zeros: none)."""
        offset = torch.zeros(self.n_labels) if bias is None else bias.detach().float().clone()
        self.bias = offset.to(self.fixed_ids.device)

    def forward(
        self, input_ids: Any = None, attention_mask: Any = None, token_type_ids: Any = None,
        inputs_embeds: Any = None,
    ) -> ClassifierOutput:  # fmt: skip
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        if token_type_ids is not None:
            raise ValueError("token_type_ids: the kind sets the token types of its pieces itself")
        ref = input_ids if input_ids is not None else inputs_embeds[..., 0]
        if attention_mask is None:
            attention_mask = torch.ones(ref.shape[:2], dtype=torch.long, device=ref.device)
        lengths = _right_padded_lengths(attention_mask)
        if self.splice_embeddings:
            text = (
                self.get_input_embeddings()(input_ids) if inputs_embeds is None else inputs_embeds
            )
            fixed = self.get_input_embeddings().forward(self.fixed_ids)  # no hook: never attributed
            rows, mask, types = self._rows(text, fixed, lengths)
            kwargs = {"inputs_embeds": rows}
        else:
            if input_ids is None:
                raise ValueError(self.gradient_unavailable or "input_ids only")
            rows, mask, types = self._rows(input_ids, self.fixed_ids, lengths)
            kwargs = {"input_ids": rows}
        if self.splice.types:
            kwargs["token_type_ids"] = types
        kwargs["attention_mask"] = mask
        if self.readout == "entailment":  # through the verified [CLS]-only last layer if it applies
            from harness.models.cls_forward import classifier_logits

            logits = classifier_logits(self.model, **kwargs)[:, self.entail].float()
            scores = logits.reshape(lengths.shape[0], len(self.splice.tails))
        else:
            positions = self._positions(lengths.to(mask.device), mask.shape[1])
            picked = self._logits_at(kwargs, positions).float().log_softmax(-1)
            scores = (
                picked[:, 0, self.word_ids] if self.readout == "mask" else self._answers(picked)
            )
        return ClassifierOutput(logits=scores - self.bias.to(scores.device))

    # ------------------------------------------------------------ splicing and readouts
    def _rows(self, text: Any, fixed: Any, lengths: Any) -> tuple[Any, Any, Any]:
        """[head | text | tail_k | pad] per (example, k), gathered into right-padded rows.

        ``fixed`` holds head, the K tails (each padded to the longest) and one pad, as ids or
        embeddings; each of the B*K rows carries its own tail only, so the work is linear in K."""
        k, p, a = len(self.splice.tails), len(self.splice.head), self.tail_len
        batch, width, dev = text.shape[0], text.shape[1], text.device
        n = lengths.to(dev).repeat_interleave(k)[:, None]
        which = torch.arange(k, device=dev).repeat(batch)
        t_len = self.tail_lengths.to(dev)[which][:, None]
        total = int((p + n + t_len).max()) if batch else 0
        t = torch.arange(total, device=dev)[None, :]
        tail = torch.where(t < p + n + t_len, p + width + (t - p - n), p + width + a)
        src = torch.where(t < p + n, t, tail)  # head and text keep their place; then the tail
        source = torch.cat(_pieces(text.repeat_interleave(k, dim=0), fixed, p, k, a, which), dim=1)
        index = src if source.dim() == 2 else src.unsqueeze(-1).expand(-1, -1, source.shape[-1])
        text_types = torch.full((width,), self.splice.text_type, dtype=torch.long, device=dev)
        types = torch.cat(
            _pieces(text_types.expand(batch * k, width), self.fixed_types.to(dev), p, k, a, which),
            dim=1,
        )
        return (
            torch.gather(source, 1, index),
            (t < p + n + t_len).long(),
            torch.gather(types, 1, src),
        )

    def _positions(self, lengths: Any, width: int) -> Any:
        """Where the scores are read, (rows, m): the mask (m = 1), or the positions whose next-token
        distribution gives answer token j (m = the longest answer; shorter answers clamped)."""
        dev, p = lengths.device, len(self.splice.head)
        if self.readout == "mask":
            return (p + lengths + self.mask_at)[:, None]
        k = len(self.answers)
        longest = max(len(a) for a in self.answers)
        which = torch.arange(k, device=dev).repeat(lengths.shape[0])
        # Answer k starts after head + text + the prompt's rest (its tail minus the answer).
        rest = [len(t) - len(a) for t, a in zip(self.splice.tails, self.answers, strict=True)]
        start = p + lengths.repeat_interleave(k) + torch.tensor(rest, device=dev)[which]
        positions = start[:, None] - 1 + torch.arange(longest, device=dev)[None, :]
        if bool((positions[:, 0] < 0).any()):
            from harness.errors import ModelError

            raise ModelError(MSG_NO_CONTEXT)
        return positions.clamp(max=width - 1)

    def _logits_at(self, kwargs: dict[str, Any], positions: Any) -> Any:
        """LM logits (rows, m, vocab) at ``positions``: the output head run there only when the
        probe showed it equals the full forward (``lm_head``), else the full forward, sliced."""
        rows = torch.arange(positions.shape[0], device=positions.device)[:, None]
        if self.lm_head is not None and self.splice_embeddings:
            hidden = self.model.base_model(**kwargs)[0]
            return getattr(self.model, self.lm_head)(hidden[rows, positions])
        return self.model(**kwargs).logits[rows, positions]

    def _answers(self, logp: Any) -> Any:
        """Sum (or mean) of log p(answer token j | everything before it), per (example, answer)."""
        k, dev = len(self.answers), logp.device
        longest = max(len(a) for a in self.answers)
        targets = torch.tensor([_padded(a, longest, 0) for a in self.answers], device=dev)
        lengths = torch.tensor([len(a) for a in self.answers], device=dev)
        valid = torch.arange(longest, device=dev)[None, :] < lengths[:, None]
        which = torch.arange(k, device=dev).repeat(logp.shape[0] // k)
        tok = logp.gather(-1, targets[which].unsqueeze(-1)).squeeze(-1)
        total = (tok * valid[which]).sum(-1)
        if self.mean:
            total = total / lengths[which]
        return total.reshape(-1, k)

    # ------------------------------------------------------------ the inputs_embeds probe
    def probe(self, probe_ids: Sequence[int]) -> None:
        """Splice embeddings when the model's ``inputs_embeds`` forward equals its ``input_ids``
        forward on a probe text; otherwise splice ids and record why there are no gradients."""
        ids = torch.tensor([list(probe_ids)], dtype=torch.long, device=self.fixed_ids.device)
        mask = torch.ones_like(ids)
        try:
            with torch.no_grad():
                self.splice_embeddings = False
                by_ids = self(input_ids=ids, attention_mask=mask).logits.float()
                self.splice_embeddings = True
                by_embeds = self(input_ids=ids, attention_mask=mask).logits.float()
            gap = float((by_ids - by_embeds).abs().max())
            why = None if gap <= PROBE_TOLERANCE else f"largest difference {gap:.3g}"
        except (TypeError, ValueError, NotImplementedError, RuntimeError) as exc:
            why = f"{type(exc).__name__}: {exc}"
        self.splice_embeddings = why is None
        if why is not None:
            self.gradient_unavailable = MSG_NO_EMBEDS.format(
                model=type(self.model).__name__, why=why
            )
        elif self.readout != "entailment":
            self._probe_head(ids, mask, by_embeds)

    def _probe_head(self, ids: Any, mask: Any, full: Any) -> None:
        """Use the LM's output head at the readout positions only (the vocabulary projection at
        every position is most of a small LM's forward) where it equals the full forward."""
        for name in LM_HEADS:
            if not isinstance(getattr(self.model, name, None), torch.nn.Module):
                continue
            self.lm_head = name
            try:
                with torch.no_grad():
                    sliced = self(input_ids=ids, attention_mask=mask).logits.float()
                if float((sliced - full).abs().max()) <= PROBE_TOLERANCE:
                    return
            except (TypeError, ValueError, IndexError, RuntimeError, AttributeError):
                pass
        self.lm_head = None


def _pieces(text_rows: Any, fixed: Any, p: int, k: int, a: int, which: Any) -> list[Any]:
    """Per row: head, the text, the row's own tail, one pad (of ``fixed``'s layout)."""
    rows = text_rows.shape[0]
    head = fixed[:p].unsqueeze(0).expand(rows, *fixed[:p].shape)
    tails = fixed[p : p + k * a].reshape(k, a, *fixed.shape[1:])[which]
    pad = fixed[-1:].unsqueeze(0).expand(rows, *fixed[-1:].shape)
    return [head, text_rows, tails, pad]


def _padded(row: Sequence[int], length: int, value: int) -> list[int]:
    return [*row, *([value] * (length - len(row)))]


def _right_padded_lengths(mask: Any) -> Any:
    lengths = mask.long().sum(dim=1)
    expected = torch.arange(mask.shape[1], device=mask.device)[None, :] < lengths[:, None]
    if not torch.equal(expected, mask.bool()):
        raise ValueError(MSG_NOT_RIGHT_PADDED)
    return lengths


def empty_safe_collate(
    tokenizer: Any, rows: Sequence[Sequence[int]], truncated: Sequence[bool] | None
) -> Any:
    """``pad_rows``, but a batch of empty texts gets one padded column (mask 0) instead of none."""
    from harness.models.base import Encoded
    from harness.models.kinds.adapter import pad_rows

    rows = [list(r) for r in rows]
    if rows and max(len(r) for r in rows) == 0:
        enc = pad_rows(tokenizer, [[0] for _ in rows], truncated)
        return Encoded(enc.input_ids, enc.attention_mask * 0, None, [0] * len(rows), enc.truncated)
    return pad_rows(tokenizer, rows, truncated)
