"""Hugging Face sequence-classification adapter.

Loads a local folder safely (safetensors only unless ``allow_pickle``; custom code only with
``trust_remote_code``), picks a device, and predicts in length-bucketed batches padded to the
longest item of each batch under ``torch.inference_mode``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import MSG_PICKLE_REFUSED, MSG_REMOTE_CODE_REFUSED, ModelError
from harness.models.base import Encoded, FloatArray
from harness.records import FileDigest, ModelInfo, TrainingInfo
from harness.store import digest_tree

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "added_tokens.json",
)
# The model card is not part of the identity: it holds wall times, so a digest over it could
# never repeat. Weights, config, labels and tokenizer are.
MODEL_FILES = ("config.json", "labels.json")
ADAPTER_DIR = "adapter"  # a LoRA adapter saved unmerged (lora.merge: false) beside the base weights


def resolve_device(requested: str) -> str:
    import torch

    if requested != "auto":
        if requested == "cuda" and not torch.cuda.is_available():
            raise ModelError("device: 'cuda' was requested but no CUDA device is available")
        if requested == "mps" and not torch.backends.mps.is_available():
            raise ModelError("device: 'mps' was requested but MPS is not available")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def check_model_folder(folder: Path, *, allow_pickle: bool, trust_remote_code: bool) -> list[Path]:
    """Refuse unsafe folders before anything is loaded. Returns the weight files."""
    if not folder.is_dir():
        raise ModelError(f"model.path: {folder} is not a folder")
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder}: no config.json; is this a Hugging Face model folder?")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{folder / 'config.json'}: not valid JSON ({exc})") from None
    if isinstance(config, dict) and config.get("auto_map") and not trust_remote_code:
        raise ModelError(MSG_REMOTE_CODE_REFUSED.format(path=folder))
    safetensors = sorted(folder.glob("*.safetensors"))
    pickles = sorted(p for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES and p.is_file())
    if pickles and not allow_pickle and not safetensors:
        raise ModelError(MSG_PICKLE_REFUSED.format(path=folder, files=", ".join(p.name for p in pickles)))
    if not safetensors and not pickles:
        raise ModelError(f"{folder}: no weights found (*.safetensors)")
    return safetensors or pickles


def model_digest(folder: Path) -> tuple[str, list[FileDigest], str | None]:
    """Digest of weights + config + tokenizer files, and of the tokenizer files alone."""
    weights = [p for p in folder.iterdir() if p.is_file() and (p.suffix == ".safetensors" or p.suffix in PICKLE_SUFFIXES)]
    extra = [folder / n for n in MODEL_FILES if (folder / n).is_file()]
    if (folder / ADAPTER_DIR).is_dir():
        extra += sorted(p for p in (folder / ADAPTER_DIR).rglob("*") if p.is_file())
    tok = [folder / n for n in TOKENIZER_FILES if (folder / n).is_file()]
    digest, entries = digest_tree(folder, weights + extra + tok)
    tok_digest = digest_tree(folder, tok)[0] if tok else None
    return digest, [FileDigest(**e) for e in entries], tok_digest


class HFClassifier:
    """A ``ModelAdapter`` (and ``TorchModelAccess``) over a transformers sequence classifier.

    Construct with ``HFClassifier.load(...)``; the constructor only stores what it is given.
    """

    def __init__(
        self,
        *,
        model: Any,
        tokenizer: Any,
        label_names: tuple[str, ...],
        device: str,
        max_length: int,
        batch_size: int,
        precision: str,
        info: ModelInfo,
        fp32_model: Any = None,
    ) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._label_names = label_names
        self._device = device
        self._max_length = max_length
        self.batch_size = batch_size
        self.precision = precision
        self._info = info
        self.n_truncated = 0
        self._fp32_model = fp32_model  # int8: the float weights, for the agreement probe

    # ------------------------------------------------------------ construction
    @classmethod
    def load(
        cls,
        folder: Path,
        *,
        name: str,
        source: str,
        label_names: Sequence[str] | None = None,
        device: str = "auto",
        max_length: int = 128,
        batch_size: int = 32,
        precision: str = "auto",
        allow_pickle: bool = False,
        trust_remote_code: bool = False,
        model_card: dict[str, Any] | None = None,
        training: TrainingInfo | None = None,
    ) -> HFClassifier:
        """Load a model folder (found by ``harness.models.sources``) after the safety checks.

        ``name`` and ``source`` are how the record names the model; ``label_names`` are the
        dataset's (a new head is sized for them when the folder's differ or are generic).
        """
        from harness.models.cls_forward import forward_path
        from harness.models.precision import quantize_int8, resolve_eval

        weights = check_model_folder(folder, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
        resolved = resolve_device(device)
        model, tokenizer, names = _load_pretrained(
            folder, label_names,
            use_safetensors=all(w.suffix == ".safetensors" for w in weights),
            trust_remote_code=trust_remote_code,
        )  # fmt: skip
        model = apply_adapter(model, folder)
        model.eval().to(resolved)
        forward, probe_gap = forward_path(model)
        digest, files, tok_digest = model_digest(folder)
        chosen = resolve_eval(precision, resolved)  # auto: fp32, the reference
        eff_precision = chosen.precision
        fp32_model = model if eff_precision == "int8" else None
        if eff_precision == "int8":
            model = quantize_int8(model)
        info = ModelInfo(
            name=name, source=source, location=str(folder), digest=digest, files=files,
            tokenizer_digest=tok_digest,
            n_parameters=int(sum(p.numel() for p in (fp32_model or model).parameters())),
            label_names=list(names), max_length=max_length, dtype=eff_precision,
            model_card=model_card, forward=forward, forward_probe_max_abs_diff=probe_gap,
            training=training, precision=chosen.as_record(),
        )  # fmt: skip
        return cls(
            model=model, tokenizer=tokenizer, label_names=tuple(names), device=resolved,
            max_length=max_length, batch_size=batch_size, precision=eff_precision, info=info,
            fp32_model=fp32_model,
        )  # fmt: skip

    def fp32_reference(self) -> HFClassifier:
        """The same model computing in fp32 (the agreement probe's reference): the same weights
        without autocast, or the float weights an int8 copy was quantized from."""
        if self.precision == "fp32":
            return self
        return HFClassifier(
            model=self._fp32_model if self._fp32_model is not None else self._model,
            tokenizer=self._tokenizer, label_names=self._label_names, device=self._device,
            max_length=self._max_length, batch_size=self.batch_size, precision="fp32",
            info=self._info.model_copy(update={"dtype": "fp32", "precision": None}),
        )  # fmt: skip

    def record_agreement(self, figures: dict[str, Any]) -> None:
        """Keep the agreement probe's figures in this model's record (``precision.agreement``)."""
        detail = dict(self._info.precision or {"precision": self.precision})
        detail["agreement"] = figures
        self._info = self._info.model_copy(update={"precision": detail})

    # ------------------------------------------------------------ protocol
    @property
    def label_names(self) -> tuple[str, ...]:
        return self._label_names

    @property
    def device(self) -> str:
        return self._device

    @property
    def model(self) -> Any:
        return self._model

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @property
    def max_length(self) -> int:
        return self._max_length

    def info(self) -> ModelInfo:
        return self._info

    def tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        """Token ids per text (special tokens included, truncated) and whether each was truncated."""
        enc = self._tokenizer(
            list(texts),
            truncation=True,
            max_length=self._max_length,
            return_overflowing_tokens=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        mapping = enc.get("overflow_to_sample_mapping")
        if mapping is None:  # slow tokenizers: no overflow mapping; compare untruncated lengths
            full = self._tokenizer(list(texts), truncation=False, return_attention_mask=False)["input_ids"]
            return [row[: self._max_length] for row in full], [len(row) > self._max_length for row in full]
        ids: list[list[int]] = []
        truncated: list[bool] = []
        for row, sample in zip(enc["input_ids"], mapping, strict=True):
            if sample == len(ids):
                ids.append(list(row))
                truncated.append(False)
            else:
                truncated[sample] = True
        return ids, truncated

    def collate(self, rows: Sequence[Sequence[int]], truncated: Sequence[bool] | None = None) -> Encoded:
        """Pad token-id rows to the longest of them."""
        import torch

        longest = max(len(r) for r in rows)
        pad = self._tokenizer.pad_token_id or 0
        ids = torch.full((len(rows), longest), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
        needs_types = "token_type_ids" in getattr(self._tokenizer, "model_input_names", [])
        types = torch.zeros_like(ids) if needs_types else None
        return Encoded(
            input_ids=ids,
            attention_mask=mask,
            token_type_ids=types,
            lengths=[len(r) for r in rows],
            truncated=list(truncated) if truncated is not None else [False] * len(rows),
        )

    def encode(self, texts: Sequence[str]) -> Encoded:
        ids, truncated = self.tokenize(texts)
        return self.collate(ids, truncated)

    def logits(self, encoded: Encoded) -> Any:
        from harness.models.cls_forward import classifier_logits
        from harness.models.precision import autocast

        types = encoded.token_type_ids
        with autocast(self._device, self.precision):  # bf16 / fp16 on CPU and CUDA
            out = classifier_logits(
                self._model,
                input_ids=encoded.input_ids.to(self._device),
                attention_mask=encoded.attention_mask.to(self._device),
                token_type_ids=None if types is None else types.to(self._device),
            )
        return out.float()

    def predict_proba(self, texts: Sequence[str]) -> FloatArray:
        """Length-bucketed batches: sort by token count, pad each batch to its longest item.

        On CPU with N > 1 intra-op threads, N batches run side by side on one thread each rather
        than one batch at a time on N threads: the small matrices of short texts spend much of a
        multi-threaded forward in the threads' barriers, worst of all on a busy machine. Every
        batch is computed on one thread whatever the schedule, so probabilities are the same from
        run to run. Not under ``torch.distributed`` (ranks already share the cores) nor inside
        ``one_batch_at_a_time()`` (latency timings).
        """
        import torch

        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self._label_names)), dtype=np.float64)
        ids, truncated = self.tokenize(texts)
        self.n_truncated = int(sum(truncated))
        order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), i))
        chunks = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        out = np.empty((len(ids), len(self._label_names)), dtype=np.float64)

        def probabilities(chunk: list[int]) -> tuple[list[int], FloatArray]:
            with torch.inference_mode():
                batch = self.collate([ids[i] for i in chunk])
                return chunk, torch.softmax(self.logits(batch), dim=-1).cpu().double().numpy()

        workers = self._side_by_side_workers(len(chunks))
        if workers <= 1:
            for chunk in chunks:
                done, probs = probabilities(chunk)
                out[done] = probs
            return out
        from concurrent.futures import ThreadPoolExecutor

        threads = torch.get_num_threads()
        try:
            # The calling thread keeps its own count; each worker sets one thread for itself.
            with ThreadPoolExecutor(max_workers=workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
                for done, probs in pool.map(probabilities, chunks):
                    out[done] = probs
        finally:
            # set_num_threads also stores the default that threads started later pick up.
            torch.set_num_threads(threads)
        return out

    def _side_by_side_workers(self, n_batches: int) -> int:
        import torch

        from harness.models.base import batches_side_by_side_allowed

        if self._device != "cpu" or n_batches <= 1 or not batches_side_by_side_allowed():
            return 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return 1
        return min(torch.get_num_threads(), n_batches)


def apply_adapter(model: Any, folder: Path) -> Any:
    """For a checkpoint saved with an unmerged peft adapter (``merge: false``, or prompt and
    prefix tuning, which cannot merge): add the adapter in ``folder/adapter`` to the loaded base
    weights, merged where the method allows it, giving the fine-tuned model. A no-op otherwise."""
    adapter = folder / ADAPTER_DIR
    if not (adapter / "adapter_config.json").is_file():
        return model
    from peft import PeftModel

    wrapped = PeftModel.from_pretrained(model, str(adapter))
    if wrapped.active_peft_config.is_prompt_learning:
        return wrapped  # virtual tokens / prefixes are added on every forward
    return wrapped.merge_and_unload()


def _load_pretrained(
    folder: Path, label_names: Sequence[str] | None, *, use_safetensors: bool, trust_remote_code: bool
) -> tuple[Any, Any, list[str]]:
    """Model, tokenizer and label names from a local folder (never the network)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code, local_files_only=True)
    names = _label_names_from(folder, config, label_names)
    kwargs: dict[str, Any] = {}
    if len(names) != int(getattr(config, "num_labels", len(names))) or _generic_labels(config):
        kwargs = {
            "num_labels": len(names),
            "id2label": dict(enumerate(names)),
            "label2id": {n: i for i, n in enumerate(names)},
            "ignore_mismatched_sizes": True,
        }
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            folder, local_files_only=True, use_safetensors=use_safetensors,
            trust_remote_code=trust_remote_code, **kwargs,
        )  # fmt: skip
        tokenizer = AutoTokenizer.from_pretrained(  # type: ignore[no-untyped-call]
            folder, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except OSError as exc:
        raise ModelError(f"{folder}: cannot load model or tokenizer ({exc})") from None
    return model, tokenizer, names


def _generic_labels(config: Any) -> bool:
    id2label = getattr(config, "id2label", None) or {}
    return all(str(v).startswith("LABEL_") for v in id2label.values())


def _label_names_from(folder: Path, config: Any, requested: Sequence[str] | None) -> list[str]:
    labels_file = folder / "labels.json"
    if labels_file.is_file():
        stored = json.loads(labels_file.read_text(encoding="utf-8"))
        if requested and list(requested) != list(stored):
            raise ModelError(
                f"{labels_file}: the model was trained on labels {stored}, the dataset declares {list(requested)}"
            )
        return list(stored)
    if requested:
        return list(requested)
    if not _generic_labels(config):
        id2label = config.id2label
        return [str(id2label[i]) for i in sorted(id2label)]
    raise ModelError(f"{folder}: the model has no label names; declare dataset.labels")
