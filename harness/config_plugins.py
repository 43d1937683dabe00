"""Validation of the run-file keys whose schema a plugin owns: ``model.kind`` with
``model.params`` (the model kind's ``Params``) and ``finetune.method`` with ``finetune.params``
(the method's ``Params``).

Both are named in the registry (``harness.registry.model_kinds``, ``finetune_methods``), so a new
kind or method is one registered class; their params are checked here with the same messages as
the rest of the run file (the path, "did you mean" for unknown keys).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.config import RunConfig

MSG_KIND_WITH_FINETUNE = (
    "model.kind: {kind!r} cannot evaluate a fine-tuned checkpoint of method {method!r} "
    "(its checkpoint is a {wanted!r} model); remove model.kind"
)
MSG_KIND_NEEDS_SOURCE = (
    "model.kind: {kind!r} classifies without training; give model.artifact, model.path or "
    "model.hub instead of a finetune stage"
)


def validate_params(cls: type[Any], raw: dict[str, Any], where: tuple[int | str, ...]) -> tuple[Any, list[str]]:
    """``cls.model_validate(raw)`` and the problems, each prefixed with its run-file path."""
    from harness.config import validation_messages

    try:
        return cls.model_validate(raw), []
    except ValidationError as exc:
        return None, validation_messages(exc, cls, where)


def plugin_param_messages(config: RunConfig) -> list[str]:
    """Problems with model.kind / model.params and finetune.method / finetune.params."""
    from harness import registry

    messages: list[str] = []
    kind_name = config.model.kind
    try:
        kind = registry.model_kinds.get(kind_name)
    except ConfigError as exc:
        messages.append(f"model.kind: {exc.message}")
        kind = None
    if kind is not None:
        messages += validate_params(kind.Params, config.model.params, ("model", "params"))[1]
    ft = config.finetune
    if ft is None:
        return messages
    try:
        method = registry.finetune_methods.get(ft.method)
    except ConfigError as exc:
        return [*messages, f"finetune.method: {exc.message}"]
    if method.legacy_key is not None:
        if ft.params:
            messages.append(f"finetune.params: method {ft.method!r} takes its parameters from "
                            f"finetune.{method.legacy_key}; move them there")  # fmt: skip
    else:
        messages += validate_params(method.Params, ft.params, ("finetune", "params"))[1]
    if kind is not None and getattr(kind, "trains", True) is False:
        messages.append(MSG_KIND_NEEDS_SOURCE.format(kind=kind_name))
    elif kind_name != "hf-classifier" and kind_name != method.model_kind:
        messages.append(MSG_KIND_WITH_FINETUNE.format(kind=kind_name, method=ft.method, wanted=method.model_kind))
    return messages
