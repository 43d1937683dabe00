"""Where a model's files come from: every model source is resolved here, with one offline rule.

A source names a folder: a pinned catalog artifact (fetched and verified by sha256), a local
path or a Hugging Face Hub snapshot (only when online). A run with a ``finetune`` stage evaluates
the fine-tuned checkpoint instead (``harness.run.inputs.locate_model``), whose base model is
again resolved here. Resolving only finds the folder and says what it is called; loading it, and
refusing unsafe folders, is the model kind's work (``harness.models.hf``).

The resolvers register in ``harness.registry.model_sources`` under the ``ModelSource`` field
that selects them (``artifact``, ``path``, ``hub``), so a new source is one resolver
registered where it is defined.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import registry
from harness.errors import ConfigError, ModelError
from harness.hub import OFFLINE_VARIABLES, TRUE_VALUES, offline_variable  # noqa: F401 (the one offline rule)

if TYPE_CHECKING:
    from harness.config import ModelSource

HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model"]  # config, weights, tokenizer

MSG_HUB_OFFLINE = (
    "{where}.hub: {repo!r} needs the Hugging Face Hub, but {variable} is set; "
    "use {where}.artifact (see 'harness list artifacts') or {where}.path"
)
MSG_HUB_FAILED = "{where}.hub: cannot download {repo!r} ({error})"
MSG_NOT_A_MODEL = "{where}.artifact: {name!r} is a {kind} artifact, not a model"


@dataclass(frozen=True)
class LocatedModel:
    """A model folder found by a source, and how the record names it."""

    folder: Path
    name: str
    source: str  # the resolver's registry name, or 'finetune' for a run's fine-tuned checkpoint
    allow_pickle: bool = False
    trust_remote_code: bool = False
    model_card: dict[str, Any] | None = None


# (source, its place in the run file for messages, the folder relative paths start from)
Resolver = Callable[["ModelSource", str, Path], LocatedModel]


def resolve(source: ModelSource, *, where: str, base_dir: Path) -> LocatedModel:
    """The folder of ``source`` (validated to choose exactly one of artifact, path or hub).

    ``where`` is the source's place in the run file (``model``, ``finetune.base``) for messages.
    """
    (kind,) = source.chosen()
    resolver: Resolver = registry.model_sources.get(kind)
    return resolver(source, where, base_dir)


@registry.model_sources.register("artifact")
def from_artifact(source: ModelSource, where: str, base_dir: Path) -> LocatedModel:
    """A pinned catalog model, fetched once and verified on every use."""
    from harness import artifacts

    assert source.artifact is not None
    try:
        artifact = registry.artifacts.get(source.artifact)
    except ConfigError as exc:
        raise ConfigError(f"{where}.artifact: {exc.message}") from None
    if artifact.kind != "model":
        raise ConfigError(MSG_NOT_A_MODEL.format(where=where, name=source.artifact, kind=artifact.kind))
    return _located(artifacts.fetch(source.artifact), source.artifact, "artifact", source)


@registry.model_sources.register("path")
def from_path(source: ModelSource, where: str, base_dir: Path) -> LocatedModel:
    """A local folder; a relative path is relative to ``base_dir`` (where harness runs)."""
    assert source.path is not None
    folder = Path(source.path).expanduser()
    folder = folder if folder.is_absolute() else base_dir / folder
    return _located(folder, folder.name, "path", source)


@registry.model_sources.register("hub")
def from_hub(source: ModelSource, where: str, base_dir: Path) -> LocatedModel:
    """A Hub snapshot (config, weights and tokenizer files only); refused at once when offline."""
    repo = source.hub
    assert repo is not None
    variable = offline_variable()
    if variable is not None:
        raise ModelError(MSG_HUB_OFFLINE.format(where=where, repo=repo, variable=variable))
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo, revision=source.revision, allow_patterns=HUB_FILES)
    except Exception as exc:  # the hub client raises many types; all mean "not available"
        error = f"{type(exc).__name__}: {exc}"
        raise ModelError(MSG_HUB_FAILED.format(where=where, repo=repo, error=error)) from None
    return _located(Path(folder), repo, "hub", source)


def _located(folder: Path, name: str, kind: str, source: ModelSource) -> LocatedModel:
    return LocatedModel(
        folder=folder,
        name=name,
        source=kind,
        allow_pickle=source.allow_pickle,
        trust_remote_code=source.trust_remote_code,
    )
