"""Fine-tuning preparation: every check that can fail runs here, before any long work starts.

Resolves the base model (through ``harness.models.sources``, as for the evaluated model),
picks and checks the train / dev splits, tokenizes, builds the model for the chosen method
(``methods``) and refuses a LoRA target module the model does not have. ``finetune.shots``
draws K examples per class from the train split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import FinetuneConfig, ModelSource
from harness.data import Dataset, DatasetBundle
from harness.errors import ConfigError, DataError, ModelError

MSG_NO_TRAIN_SPLIT = (
    "finetune.train_split: dataset {name!r} has no split {split!r} (splits: {splits}); "
    "fine-tuning needs labelled training data"
)
MSG_NO_DEV_SPLIT = (
    "finetune.dev_split: dataset {name!r} has no split {split!r} (splits: {splits}); "
    "set finetune.dev_split to one of them, or to null to train without dev evaluation"
)
MSG_LABELS_DIFFER = (
    "dataset: the label set differs between split {a!r} {la} and split {b!r} {lb}; "
    "declare dataset.labels so every split uses the same label set"
)
MSG_BATCH_TOO_LARGE = (
    "finetune.batch_size: {batch} is larger than the train split ({n} examples); "
    "use a batch_size of at most {n}"
)
MSG_ACCUM_TOO_LARGE = (
    "finetune.gradient_accumulation: one optimizer step would need {need} examples "
    "(batch_size {batch} x gradient_accumulation {accum}) but the train split has {n}"
)
MSG_MISSING_TARGET = (
    "finetune.{key}.target_modules: {missing} not found in base model {base!r}; "
    "Linear modules available: {available}"
)
MSG_EARLY_STOP_NO_DEV = (
    "finetune.early_stopping_patience: early stopping needs a dev split; set finetune.dev_split"
)
MSG_TOO_FEW_SHOTS = (
    "finetune.shots: {k} examples per class were asked for, but class {label!r} has only {n} "
    "in split {split!r}; lower finetune.shots to at most {n}"
)


@dataclass(frozen=True)
class BaseModel:
    """The resolved base model: where its files are and what they hash to."""

    name: str
    source: str  # 'artifact', 'path' or 'hub'
    folder: Path
    digest: str
    use_safetensors: bool
    trust_remote_code: bool


def resolve_base(source: ModelSource, *, base_dir: Path) -> BaseModel:
    """Find the base model folder (``harness.models.sources``), refuse unsafe ones, digest it."""
    from harness.models.hf import check_model_folder, model_digest
    from harness.models.sources import resolve

    found = resolve(source, where="finetune.base", base_dir=base_dir)
    weights = check_model_folder(
        found.folder, allow_pickle=found.allow_pickle, trust_remote_code=found.trust_remote_code
    )
    return BaseModel(
        name=found.name,
        source=found.source,
        folder=found.folder,
        digest=model_digest(found.folder)[0],
        use_safetensors=all(w.suffix == ".safetensors" for w in weights),
        trust_remote_code=found.trust_remote_code,
    )


def select_splits(
    bundle: DatasetBundle, ft: FinetuneConfig, seed: int
) -> tuple[Dataset, Dataset | None]:
    """The train split (sampled when max_train_examples is set) and the dev split, checked."""
    splits = ", ".join(bundle.splits)
    if ft.train_split not in bundle.splits:
        raise DataError(
            MSG_NO_TRAIN_SPLIT.format(name=bundle.name, split=ft.train_split, splits=splits)
        )
    train = bundle.splits[ft.train_split].sample(ft.max_train_examples, seed)
    if ft.shots is not None:
        train = draw_shots(train, ft.shots, seed)
    dev = None
    if ft.dev_split is not None:
        if ft.dev_split not in bundle.splits:
            raise DataError(
                MSG_NO_DEV_SPLIT.format(name=bundle.name, split=ft.dev_split, splits=splits)
            )
        dev = bundle.splits[ft.dev_split]
    elif ft.early_stopping_patience is not None:
        raise ConfigError(MSG_EARLY_STOP_NO_DEV)
    # The bundle loader checks this too; a bundle built in code may not have been through it.
    for name, ds in bundle.splits.items():
        if ds.label_names != train.label_names:
            raise DataError(
                MSG_LABELS_DIFFER.format(
                    a=ft.train_split, la=list(train.label_names), b=name, lb=list(ds.label_names)
                )
            )
    n = len(train)
    if ft.batch_size > n:
        raise ConfigError(MSG_BATCH_TOO_LARGE.format(batch=ft.batch_size, n=n))
    if ft.batch_size * ft.gradient_accumulation > n:
        raise ConfigError(
            MSG_ACCUM_TOO_LARGE.format(
                need=ft.batch_size * ft.gradient_accumulation,
                batch=ft.batch_size,
                accum=ft.gradient_accumulation,
                n=n,
            )
        )
    return train, dev


def tokenize(
    tokenizer: Any, data: Dataset, max_length: int, *, sort: bool = False
) -> list[dict[str, Any]]:
    """Feature dicts for the Trainer (unpadded: the collator pads each batch to its longest).

    ``sort`` orders by length, used for dev evaluation so batches waste little padding.
    """
    enc = tokenizer(list(data.texts), truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    rows = [
        {**{k: enc[k][i] for k in keys}, "labels": int(data.labels[i])} for i in range(len(data))
    ]
    if sort:
        rows.sort(key=lambda r: len(r["input_ids"]))
    return rows


def load_base(base: BaseModel, label_names: tuple[str, ...], seed: int) -> tuple[Any, Any]:
    """The base model with a classification head for ``label_names``, and its tokenizer.

    The seed is set first so a new head is initialised the same way every time.
    """
    import transformers
    from transformers import AutoConfig, AutoModelForSequenceClassification, set_seed

    hf: Any = transformers  # parts of transformers are untyped
    hf.logging.set_verbosity_error()
    set_seed(seed)
    kw: dict[str, Any] = {"local_files_only": True, "trust_remote_code": base.trust_remote_code}
    try:
        config = AutoConfig.from_pretrained(
            base.folder,
            num_labels=len(label_names),
            id2label=dict(enumerate(label_names)),
            label2id={n: i for i, n in enumerate(label_names)},
            **kw,
        )
        model = AutoModelForSequenceClassification.from_pretrained(
            base.folder,
            config=config,
            ignore_mismatched_sizes=True,
            use_safetensors=base.use_safetensors,
            **kw,
        )
        tokenizer = hf.AutoTokenizer.from_pretrained(base.folder, **kw)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"finetune.base: cannot load {base.name!r} from {base.folder} ({exc})"
        ) from None
    return model, tokenizer


def linear_module_names(model: Any) -> list[str]:
    """Short names (last path component) of the model's Linear layers, e.g. query, value, dense."""
    import torch

    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear)
        }
    )


def draw_shots(train: Dataset, k: int, seed: int) -> Dataset:
    """K examples of every class, drawn with ``seed``: the first K of each class in the order of
    a seeded hash of the id (as ``Dataset.sample``), so the draw is the same on every machine and
    the K-shot set of a grown split keeps the ids it had. A class with fewer than K fails."""
    from harness.data import _seeded_hash

    chosen: list[int] = []
    for label, name in enumerate(train.label_names):
        members = [i for i, y in enumerate(train.labels) if y == label]
        if len(members) < k:
            raise DataError(MSG_TOO_FEW_SHOTS.format(k=k, label=name, n=len(members), split=train.split))
        members.sort(key=lambda i: _seeded_hash(train.ids[i], seed))
        chosen += members[:k]
    return train.subset(sorted(chosen))


def check_lora_targets(model: Any, targets: list[str], base_name: str, *, key: str = "lora") -> None:
    """Refuse targets that match no Linear module (peft's rule: exact name or '.name' suffix)."""
    import torch

    names = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        raise ConfigError(
            MSG_MISSING_TARGET.format(
                key=key,
                missing=", ".join(repr(m) for m in missing),
                base=base_name,
                available=", ".join(linear_module_names(model)),
            )
        )


def apply_method(model: Any, ft: FinetuneConfig, base_name: str, total_steps: int = 0) -> Any:
    """Make only the parameters the method trains trainable; wrap with peft when it asks
    (``harness.models.finetune.methods``; AdaLoRA's schedule needs ``total_steps``)."""
    from harness.models.finetune import methods

    return methods.apply_method(model, ft, base_name, total_steps)


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = trainable = 0
    for p in model.parameters():
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return int(trainable), int(total)


def probe_memory(
    model: Any,
    rows: list[dict[str, Any]],
    collator: Any,
    batch_size: int,
    device: str,
    local_rank: int = 0,
) -> None:
    """On CUDA, run one forward/backward pass on the longest batch so an out-of-memory error
    surfaces in seconds, with advice, instead of minutes into training. With several processes
    each probes on its own GPU (``cuda:LOCAL_RANK``, the one its Trainer will use)."""
    import torch

    if device != "cuda":
        return
    target = torch.device("cuda", local_rank)
    longest = sorted(rows, key=lambda r: -len(r["input_ids"]))[:batch_size]
    batch = {k: v.to(target) for k, v in collator(longest).items()}
    model.to(target)
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.cuda.is_bf16_supported()):
            loss = model(**batch).loss
        loss.backward()
    except torch.OutOfMemoryError:
        raise oom_error(batch_size) from None
    finally:
        model.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()


MSG_OOM = (
    "finetune: out of GPU memory with batch_size {batch}; lower finetune.batch_size (e.g. {half}) "
    "and raise finetune.gradient_accumulation to keep the effective batch, or lower "
    "finetune.max_length"
)


def oom_error(batch_size: int) -> ModelError:
    return ModelError(MSG_OOM.format(batch=batch_size, half=max(1, batch_size // 2)))
