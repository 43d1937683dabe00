"""An independent label-preservation judge for adversarial examples (``validity.judge``).

``nli``: a natural-language-inference model (e.g. one fine-tuned on MNLI) reads the original as
premise and the perturbed text as hypothesis; the perturbation preserves the meaning when the
entailment probability reaches the threshold. ``classifier``: another model of the same task
must still give the true label to the perturbed text (not applicable when it already misreads
the original). The folder is checked like any model folder (no pickle weights, no custom code).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.robust.validity import JudgeParams

MSG_NO_ENTAILMENT = (
    "robustness.validity.judge.path: {path} is not an NLI model: none of its labels ({labels}) "
    "is 'entailment'"
)
MSG_LABELS = (
    "robustness.validity.judge.path: {path}: a classifier judge needs the dataset's labels "
    "({expected}); it has {labels}"
)


class Judge:
    """Loaded with ``load``; ``check`` judges one (original, perturbed, label)."""

    def __init__(
        self, params: JudgeParams, *, label_names: tuple[str, ...], base_dir: Path
    ) -> None:
        self.params, self.label_names = params, label_names
        self.folder = (
            (base_dir / params.path) if not Path(params.path).is_absolute() else Path(params.path)
        )
        self.model: Any = None
        self.tokenizer: Any = None
        self.index: dict[str, int] = {}

    def load(self) -> Judge:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from harness.models.hf import check_model_folder

        weights = check_model_folder(self.folder, allow_pickle=False, trust_remote_code=False)
        self.model = AutoModelForSequenceClassification.from_pretrained(
            self.folder, use_safetensors=all(w.suffix == ".safetensors" for w in weights)
        ).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)  # type: ignore[no-untyped-call]
        names = [str(self.model.config.id2label[i]) for i in range(self.model.config.num_labels)]
        self.index = {n.lower(): i for i, n in enumerate(names)}
        if self.params.kind == "nli" and not any(n.startswith("entail") for n in self.index):
            raise ConfigError(MSG_NO_ENTAILMENT.format(path=self.folder, labels=", ".join(names)))
        if self.params.kind == "classifier" and {n.lower() for n in self.label_names} - set(
            self.index
        ):
            raise ConfigError(
                MSG_LABELS.format(
                    path=self.folder, expected=", ".join(self.label_names), labels=", ".join(names)
                )
            )
        return self

    def probabilities(self, first: list[str], second: list[str] | None = None) -> Any:
        import torch

        enc = self.tokenizer(
            first, second, truncation=True, max_length=self.params.max_length,
            padding=True, return_tensors="pt",
        )  # fmt: skip
        with torch.inference_mode():
            return torch.softmax(self.model(**enc).logits.float(), dim=-1).numpy()

    def check(self, original: str, perturbed: str, label: int) -> dict[str, Any]:
        if self.params.kind == "nli":
            entail = next(i for n, i in self.index.items() if n.startswith("entail"))
            p = float(self.probabilities([original], [perturbed])[0][entail])
            return {
                "passed": p >= self.params.threshold,
                "value": p,
                "threshold": self.params.threshold,
                "kind": "nli",
            }
        target = self.index[self.label_names[label].lower()]
        probs = self.probabilities([original, perturbed])
        if int(probs[0].argmax()) != target:
            return {
                "passed": None,
                "value": None,
                "kind": "classifier",
                "note": "judge misreads the original",
            }
        p = float(probs[1][target])
        return {
            "passed": p >= self.params.threshold,
            "value": p,
            "threshold": self.params.threshold,
            "kind": "classifier",
        }
