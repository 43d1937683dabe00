"""The fine-tuning methods: one registry entry per ``finetune.method``, each with typed params.

A method says which parameters train and how the trained model is saved:

- ``full``: every parameter; ``head``: the classification head only (the encoder frozen);
- the PEFT family through ``peft`` — ``lora`` (params in ``finetune.lora``, as before),
  ``adalora``, ``ia3``, ``prompt_tuning``, ``prefix_tuning`` (params in ``finetune.params``). Each
  keeps the new classification head trainable and saved (peft's ``SEQ_CLS`` task type). LoRA,
  AdaLoRA and IA3 merge into the weights when ``merge`` is true; prompt and prefix tuning cannot
  merge, so their adapter is saved beside the base weights and re-applied on load;
- ``setfit``: SetFit (Tunstall et al. 2022) through the ``setfit`` library: contrastive
  fine-tuning of the sentence encoder on pairs, then a logistic-regression head
  (``harness.models.finetune.setfit_stage``), evaluated as model kind ``setfit``.

Methods register in ``harness.registry.finetune_methods``; the config validates
``finetune.params`` against the method's ``Params`` (did-you-mean on unknown keys). Nothing here
imports torch, transformers or peft at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from harness import registry
from harness.config import LoraConfig
from harness.errors import ConfigError, ModelError
from harness.records import StrictModel

MSG_NOTHING_TRAINABLE = "finetune.method: 'head' found no classifier head outside {prefix!r}"
MSG_PARAMS_FOR_LORA = (
    "finetune.params: method 'lora' takes its parameters from finetune.lora (r, alpha, dropout, "
    "target_modules, merge); move them there"
)
MSG_INIT_TEXT = "finetune.params.init_text: prompt_tuning with init 'text' needs an init_text"


class MethodParams(StrictModel):
    """Base of every method's parameters (strict: unknown keys are refused)."""


class NoParams(MethodParams):
    """A method without parameters of its own (full, head)."""


class AdaLoraParams(MethodParams):
    init_r: PositiveInt = Field(default=12, description="Initial rank of every adapter.")
    target_r: PositiveInt = Field(default=4, description="Average rank budget after pruning.")
    alpha: PositiveInt = Field(default=16, description="Scaling numerator (lora_alpha).")
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["query", "value"])
    tinit_ratio: float = Field(
        default=0.1, ge=0.0, lt=1.0, description="Share of steps before rank pruning starts."
    )
    tfinal_ratio: float = Field(
        default=0.2, ge=0.0, lt=1.0, description="Share of final steps at the final ranks."
    )
    delta_t: PositiveInt = Field(default=10, description="Steps between two rank allocations.")
    beta1: float = Field(default=0.85, gt=0.0, lt=1.0, description="Sensitivity EMA factor.")
    beta2: float = Field(default=0.85, gt=0.0, lt=1.0, description="Uncertainty EMA factor.")
    orth_reg_weight: float = Field(default=0.5, ge=0.0, description="Orthogonality penalty.")
    merge: bool = Field(default=True, description="Merge the adapter into the weights.")

    @model_validator(mode="after")
    def _ranks(self) -> AdaLoraParams:
        if self.target_r > self.init_r:
            raise ValueError("target_r must be <= init_r")
        if self.tinit_ratio + self.tfinal_ratio >= 1.0:
            raise ValueError("tinit_ratio + tfinal_ratio must be < 1 (no steps left to prune)")
        return self


class IA3Params(MethodParams):
    target_modules: list[str] | None = Field(
        default=None, description="Modules whose activations are rescaled; null: peft's default "
        "for the architecture (BERT: key, value, output.dense).",
    )
    feedforward_modules: list[str] | None = Field(
        default=None, description="Which targets are feed-forward (scaled on their input); "
        "null: peft's default for the architecture.",
    )
    merge: bool = Field(default=True, description="Merge the scaling vectors into the weights.")


class PromptTuningParams(MethodParams):
    num_virtual_tokens: PositiveInt = Field(default=20, description="Soft prompt length.")
    init: Literal["random", "text"] = Field(
        default="random", description="Soft prompt initialisation (Lester et al. 2021)."
    )
    init_text: str | None = Field(default=None, description="Text whose embeddings start the prompt.")

    @model_validator(mode="after")
    def _text(self) -> PromptTuningParams:
        if self.init == "text" and not self.init_text:
            raise ValueError(MSG_INIT_TEXT.removeprefix("finetune.params.init_text: "))
        return self


class PrefixTuningParams(MethodParams):
    num_virtual_tokens: PositiveInt = Field(default=20, description="Prefix length per layer.")
    prefix_projection: bool = Field(
        default=False, description="Reparametrise the prefix through an MLP (Li & Liang 2021)."
    )
    encoder_hidden_size: PositiveInt | None = Field(
        default=None, description="Hidden size of that MLP; null: the model's hidden size."
    )


class SetFitParams(MethodParams):
    num_iterations: PositiveInt = Field(
        default=20, description="Pairs drawn per training example (SetFit's R; pairs = 2 R n)."
    )
    body_epochs: PositiveInt = Field(default=1, description="Contrastive epochs over the pairs.")
    body_learning_rate: PositiveFloat = Field(
        default=2e-5, description="Learning rate of the sentence encoder (SetFit's default)."
    )
    head_c: PositiveFloat = Field(
        default=1.0, description="Inverse L2 strength of the logistic-regression head (sklearn C)."
    )
    head_max_iter: PositiveInt = Field(default=100, description="Solver iterations of the head.")


@dataclass(frozen=True)
class BuildContext:
    """What applying a method may need besides the model and its params."""

    base_name: str
    total_steps: int


Apply = Callable[[Any, Any, BuildContext], Any]


@dataclass(frozen=True)
class Method:
    """One fine-tuning method: its params, how it makes a model trainable, how it is run."""

    name: str
    Params: type[StrictModel]  # a MethodParams; LoRA's is config.LoraConfig (finetune.lora)
    description: str
    apply: Apply
    peft: bool = False  # wraps the model with a peft adapter
    trainer: Literal["hf", "setfit"] = "hf"
    model_kind: str = "hf-classifier"  # the kind that loads its checkpoint
    legacy_key: str | None = None  # params live in finetune.<legacy_key>, not finetune.params

    def params_of(self, ft: Any) -> Any:
        """The validated params of this method in ``ft`` (a FinetuneConfig)."""
        if self.legacy_key is not None:
            if ft.params:
                raise ConfigError(MSG_PARAMS_FOR_LORA)
            return getattr(ft, self.legacy_key)
        return self.Params.model_validate(ft.params or {})


def method(name: str) -> Method:
    found: Method = registry.finetune_methods.get(name)
    return found


# ------------------------------------------------------------------ applying the methods


def _full(model: Any, params: Any, ctx: BuildContext) -> Any:
    return model


def _head(model: Any, params: Any, ctx: BuildContext) -> Any:
    # Everything under the encoder (base_model_prefix, e.g. 'bert.') is frozen; the
    # classification head (e.g. 'classifier.') is what remains trainable.
    prefix = f"{model.base_model_prefix}."
    trainable = 0
    for name, param in model.named_parameters():
        param.requires_grad = not name.startswith(prefix)
        trainable += int(param.requires_grad)
    if not trainable:
        raise ModelError(MSG_NOTHING_TRAINABLE.format(prefix=prefix))
    return model


def _wrap(model: Any, peft_config: Any) -> Any:
    from peft import get_peft_model

    return get_peft_model(model, peft_config)


def _lora(model: Any, params: Any, ctx: BuildContext) -> Any:
    from peft import LoraConfig, TaskType

    from harness.models.finetune.prep import check_lora_targets

    check_lora_targets(model, list(params.target_modules), ctx.base_name, key="lora")
    return _wrap(model, LoraConfig(
        task_type=TaskType.SEQ_CLS,  # also keeps the new classifier head trainable and saved
        r=params.r, lora_alpha=params.alpha, lora_dropout=params.dropout,
        target_modules=list(params.target_modules),
    ))  # fmt: skip


def _adalora(model: Any, params: AdaLoraParams, ctx: BuildContext) -> Any:
    from peft import AdaLoraConfig, TaskType

    from harness.models.finetune.prep import check_lora_targets

    check_lora_targets(model, list(params.target_modules), ctx.base_name, key="params")
    steps = max(ctx.total_steps, 3)
    tinit = int(params.tinit_ratio * steps)
    tfinal = min(int(params.tfinal_ratio * steps), steps - tinit - 1)
    return _wrap(model, AdaLoraConfig(
        task_type=TaskType.SEQ_CLS, init_r=params.init_r, target_r=params.target_r,
        lora_alpha=params.alpha, lora_dropout=params.dropout,
        target_modules=list(params.target_modules), total_step=steps, tinit=tinit,
        tfinal=max(tfinal, 0), deltaT=params.delta_t, beta1=params.beta1, beta2=params.beta2,
        orth_reg_weight=params.orth_reg_weight,
    ))  # fmt: skip


def _ia3(model: Any, params: IA3Params, ctx: BuildContext) -> Any:
    from peft import IA3Config, TaskType

    from harness.models.finetune.prep import check_lora_targets

    kwargs: dict[str, Any] = {}
    if params.target_modules is not None:
        check_lora_targets(model, list(params.target_modules), ctx.base_name, key="params")
        kwargs["target_modules"] = list(params.target_modules)
        kwargs["feedforward_modules"] = list(params.feedforward_modules or [])
    elif params.feedforward_modules is not None:
        raise ConfigError("finetune.params.feedforward_modules: set target_modules too")
    try:
        return _wrap(model, IA3Config(task_type=TaskType.SEQ_CLS, **kwargs))
    except ValueError as exc:  # peft: no default targets for this architecture, or a bad subset
        raise ConfigError(f"finetune.params: ia3 cannot be applied to {ctx.base_name!r} ({exc})") from None


def _prompt_tuning(model: Any, params: PromptTuningParams, ctx: BuildContext) -> Any:
    from peft import PromptTuningConfig, PromptTuningInit, TaskType

    kwargs: dict[str, Any] = {"prompt_tuning_init": PromptTuningInit.RANDOM}
    if params.init == "text":
        kwargs = {
            "prompt_tuning_init": PromptTuningInit.TEXT,
            "prompt_tuning_init_text": params.init_text,
            "tokenizer_name_or_path": str(getattr(model.config, "_name_or_path", "")),
        }
    return _wrap(model, PromptTuningConfig(
        task_type=TaskType.SEQ_CLS, num_virtual_tokens=params.num_virtual_tokens, **kwargs
    ))  # fmt: skip


def _prefix_tuning(model: Any, params: PrefixTuningParams, ctx: BuildContext) -> Any:
    from peft import PrefixTuningConfig, TaskType

    kwargs: dict[str, Any] = {"prefix_projection": params.prefix_projection}
    if params.encoder_hidden_size is not None:
        kwargs["encoder_hidden_size"] = params.encoder_hidden_size
    return _wrap(model, PrefixTuningConfig(
        task_type=TaskType.SEQ_CLS, num_virtual_tokens=params.num_virtual_tokens, **kwargs
    ))  # fmt: skip


def _setfit(model: Any, params: Any, ctx: BuildContext) -> Any:
    raise AssertionError("setfit is trained by harness.models.finetune.setfit_stage")


for _m in (
    Method("full", NoParams, "every parameter trains", _full),
    Method("head", NoParams, "only the classification head trains; the encoder is frozen", _head),
    Method("lora", LoraConfig, "low-rank adapters (Hu et al. 2021)", _lora, peft=True,
           legacy_key="lora"),
    Method("adalora", AdaLoraParams, "low-rank adapters with adaptive rank budget "
           "(Zhang et al. 2023)", _adalora, peft=True),
    Method("ia3", IA3Params, "learned activation rescaling (Liu et al. 2022)", _ia3, peft=True),
    Method("prompt_tuning", PromptTuningParams, "soft prompt tokens before the input "
           "(Lester et al. 2021)", _prompt_tuning, peft=True),
    Method("prefix_tuning", PrefixTuningParams, "learned key/value prefixes in every layer "
           "(Li & Liang 2021)", _prefix_tuning, peft=True),
    Method("setfit", SetFitParams, "contrastive sentence-encoder fine-tuning + logistic head "
           "(Tunstall et al. 2022)", _setfit, trainer="setfit", model_kind="setfit"),
):  # fmt: skip
    registry.finetune_methods.register(_m.name)(_m)


def apply_method(model: Any, ft: Any, base_name: str, total_steps: int) -> Any:
    """Make only the parameters ``ft.method`` trains trainable; wrap with peft where it asks."""
    chosen = method(ft.method)
    return chosen.apply(model, chosen.params_of(ft), BuildContext(base_name, total_steps))


def is_prompt_learning(model: Any) -> bool:
    """A peft model whose adapter cannot merge into the weights (prompt / prefix tuning)."""
    config = getattr(model, "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))


def unwrap_saved_modules(model: Any) -> Any:
    """The base model under a prompt-learning peft model, with every ``ModulesToSaveWrapper``
    (the trained classifier head) replaced by its trained copy: the weights a plain
    ``from_pretrained`` loads, over which the adapter is applied again on load."""
    from peft.utils import ModulesToSaveWrapper

    base = model.get_base_model()
    for name, module in list(base.named_modules()):
        if isinstance(module, ModulesToSaveWrapper):
            parent_name, _, child = name.rpartition(".")
            parent = base.get_submodule(parent_name) if parent_name else base
            active: Any = module.active_adapter
            setattr(parent, child, module.modules_to_save[active if isinstance(active, str) else active[0]])
    return base


def merges(ft: Any) -> bool:
    """Whether the method's adapter is merged into the saved weights."""
    chosen = method(ft.method)
    if not chosen.peft or chosen.name in ("prompt_tuning", "prefix_tuning"):
        return False
    return bool(getattr(chosen.params_of(ft), "merge", False))


def method_params_card(ft: Any) -> dict[str, Any]:
    """The method's resolved parameters for the model card (defaults filled in)."""
    params = method(ft.method).params_of(ft)
    dumped: dict[str, Any] = params.model_dump(mode="json")
    return dumped


def method_callbacks(ft: Any) -> list[Any]:
    """Trainer callbacks a method needs: AdaLoRA reallocates its rank budget after every
    optimizer step (peft's ``update_and_allocate``, which the Trainer does not call)."""
    if ft.method != "adalora":
        return []
    from transformers import TrainerCallback

    class AdaLoraAllocation(TrainerCallback):  # type: ignore[misc]
        """``update_and_allocate(step)`` between the optimizer step and zero_grad, as peft's
        AdaLoRA training loop does (the importance scores read the gradients)."""

        def on_optimizer_step(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            model = kw.get("model")
            if model is not None:
                model.base_model.update_and_allocate(state.global_step)

    return [AdaLoraAllocation()]
