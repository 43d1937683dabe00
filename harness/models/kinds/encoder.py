"""A sentence encoder read from a sentence-transformers folder with plain transformers:
``AutoModel`` + the folder's pooling (``modules.json`` -> ``1_Pooling/config.json``: mean, CLS,
max or mean-sqrt-len over the attention mask) + ``Normalize`` when the folder has it.

Plain transformers rather than the sentence-transformers package: the same safety checks as
every model folder (safetensors only, no remote code), our own batching, and no import of the
training stack at evaluation time. Embeddings equal ``SentenceTransformer.encode`` on the same
folder (tested). A folder without ``modules.json`` is a plain encoder: mean pooling, no
normalisation (sentence-transformers' own default for such a folder).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ModelError

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len")
MSG_UNSUPPORTED_MODULE = (
    "{folder}: sentence-transformers module {name!r} ({type}) is not supported; harness reads "
    "Transformer, Pooling and Normalize modules only"
)
MSG_BAD_POOLING = "{path}: no pooling mode harness knows ({known}) is switched on"


@dataclass(frozen=True)
class Pooling:
    mode: str  # one of POOLING_MODES
    normalize: bool

    def as_dict(self) -> dict[str, Any]:
        return {"pooling": self.mode, "normalize": self.normalize}


def read_pooling(folder: Path) -> Pooling:
    """The folder's pooling and normalisation (see the module docstring)."""
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return Pooling("mean", False)
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{modules_file}: not valid JSON ({exc})") from None
    mode, normalize = "mean", False
    for module in modules:
        kind = str(module.get("type", ""))
        short = kind.rsplit(".", 1)[-1]
        if short == "Transformer":
            continue
        if short == "Normalize":
            normalize = True
        elif short == "Pooling":
            mode = _pooling_mode(folder / str(module.get("path", "")) / "config.json")
        else:
            raise ModelError(
                MSG_UNSUPPORTED_MODULE.format(folder=folder, name=module.get("name"), type=kind)
            )
    return Pooling(mode, normalize)


def _pooling_mode(path: Path) -> str:
    if not path.is_file():
        return "mean"
    config = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(config.get("pooling_mode"), str):  # sentence-transformers >= 5
        mode = config["pooling_mode"].replace("_tokens", "").replace("lasttoken", "last")
        if mode in POOLING_MODES:
            return str(mode)
    flags = {
        "cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens",
        "max": "pooling_mode_max_tokens", "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens",
    }  # fmt: skip
    on = [mode for mode, key in flags.items() if config.get(key)]
    if len(on) != 1:
        raise ModelError(MSG_BAD_POOLING.format(path=path, known=", ".join(POOLING_MODES)))
    return on[0]


def pool(hidden: Any, mask: Any, pooling: Pooling) -> Any:
    """Sentence embeddings (batch, dim) from token states (batch, seq, dim) and the mask."""
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    if pooling.mode == "cls":
        out = hidden[:, 0]
    elif pooling.mode == "max":
        out = hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    else:
        total = (hidden * m).sum(dim=1)
        count = m.sum(dim=1).clamp(min=1e-9)
        out = total / (count if pooling.mode == "mean" else count.sqrt())
    if pooling.normalize:
        out = torch.nn.functional.normalize(out, p=2, dim=1)
    return out


def load_encoder(found: Any) -> tuple[Any, Any, Pooling]:
    """(AutoModel in eval mode, tokenizer, pooling) of a located folder, after the safety checks."""
    from transformers import AutoModel

    from harness.models.hf import check_model_folder
    from harness.models.kinds.adapter import load_tokenizer, quiet_transformers

    weights = check_model_folder(
        found.folder, allow_pickle=found.allow_pickle, trust_remote_code=found.trust_remote_code
    )
    quiet_transformers()
    try:
        module = AutoModel.from_pretrained(
            found.folder, local_files_only=True, trust_remote_code=found.trust_remote_code,
            use_safetensors=all(w.suffix == ".safetensors" for w in weights),
        )  # fmt: skip
    except (OSError, ValueError) as exc:
        raise ModelError(f"{found.folder}: cannot load the encoder ({exc})") from None
    tokenizer = load_tokenizer(found.folder, trust_remote_code=found.trust_remote_code)
    return module.eval(), tokenizer, read_pooling(found.folder)


def embed(module: Any, encoded: Any, pooling: Pooling, device: str) -> Any:
    """Pooled sentence embeddings of a padded batch (float32)."""
    kwargs = {
        "input_ids": encoded.input_ids.to(device),
        "attention_mask": encoded.attention_mask.to(device),
    }
    hidden = module(**kwargs).last_hidden_state
    return pool(hidden.float(), kwargs["attention_mask"], pooling)
