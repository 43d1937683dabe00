"""Model sources: one resolver per source kind in the registry, and one offline rule for the
evaluated model and a fine-tune's base alike (huggingface_hub's true values, either variable)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import registry
from harness.config import ModelSource
from harness.errors import ConfigError, ModelError
from harness.models import sources
from harness.models.finetune import prep

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@pytest.fixture()
def online(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_every_source_kind_has_one_registered_resolver() -> None:
    kinds = [k for k in ("artifact", "path", "hub") if k in ModelSource.model_fields]
    assert kinds == ["artifact", "path", "hub"]
    for kind in kinds:
        assert callable(registry.model_sources.get(kind))


@pytest.mark.parametrize("variable", OFFLINE_VARIABLES)
@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "On", " 1 "])
def test_offline_values_as_the_hub_client_reads_them(
    online: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    online.setenv(variable, value)
    assert sources.offline_variable() == variable


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "maybe"])
def test_other_values_are_online(online: pytest.MonkeyPatch, value: str) -> None:
    online.setenv("HF_HUB_OFFLINE", value)
    assert sources.offline_variable() is None


@pytest.mark.parametrize("where", ["model", "finetune.base"])
@pytest.mark.parametrize("variable", OFFLINE_VARIABLES)
def test_hub_refused_at_once_offline(
    online: pytest.MonkeyPatch, tmp_path: Path, where: str, variable: str
) -> None:
    import huggingface_hub

    def no_download(*args: object, **kwargs: object) -> str:
        raise AssertionError("offline: the hub client must not be called")

    online.setattr(huggingface_hub, "snapshot_download", no_download)
    online.setenv(variable, "yes")
    source = ModelSource(hub="someone/some-model")
    with pytest.raises(ModelError) as info:
        if where == "model":
            sources.resolve(source, where=where, base_dir=tmp_path)
        else:
            prep.resolve_base(source, base_dir=tmp_path)
    assert info.value.message == sources.MSG_HUB_OFFLINE.format(
        where=where, repo="someone/some-model", variable=variable
    )


def test_path_is_relative_to_base_dir(tmp_path: Path) -> None:
    found = sources.resolve(
        ModelSource(path="models/m", allow_pickle=True), where="model", base_dir=tmp_path
    )
    assert found.folder == tmp_path / "models" / "m" and found.name == "m"
    assert found.source == "path" and found.allow_pickle and not found.trust_remote_code


@pytest.mark.parametrize("where", ["model", "finetune.base"])
def test_artifact_must_be_a_known_model(tmp_path: Path, where: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{where}\.artifact: unknown artifact 'minilm-l7'"):
        sources.resolve(ModelSource(artifact="minilm-l7"), where=where, base_dir=tmp_path)
    with pytest.raises(ConfigError) as info:
        sources.resolve(ModelSource(artifact="rotten-tomatoes"), where=where, base_dir=tmp_path)
    assert info.value.message == sources.MSG_NOT_A_MODEL.format(
        where=where, name="rotten-tomatoes", kind="dataset"
    )


def test_hub_online_downloads_the_pinned_revision(online: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub

    calls: list[tuple[str, object, object]] = []

    def snapshot(repo: str, *, revision: object, allow_patterns: object) -> str:
        calls.append((repo, revision, allow_patterns))
        if repo == "someone/missing":
            raise OSError("404")
        return str(tmp_path)

    online.setattr(huggingface_hub, "snapshot_download", snapshot)
    found = sources.resolve(ModelSource(hub="someone/m", revision="abc"), where="model", base_dir=tmp_path)
    assert (found.folder, found.name, found.source) == (tmp_path, "someone/m", "hub")
    assert calls == [("someone/m", "abc", sources.HUB_FILES)]
    with pytest.raises(ModelError) as info:
        sources.resolve(ModelSource(hub="someone/missing"), where="finetune.base", base_dir=tmp_path)
    assert info.value.message == sources.MSG_HUB_FAILED.format(
        where="finetune.base", repo="someone/missing", error="OSError: 404"
    )
