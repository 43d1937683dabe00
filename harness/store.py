"""Run folders: atomic writes, append-only per-example JSONL with resume, and the manifest.

Layout of a run folder::

    record.json          the RunRecord (written last; status 'complete' only when every suite ended)
    predictions.jsonl    per-example predictions on the evaluation split
    examples/<suite>.jsonl   per-example detail of each suite
    config.yaml          the exact run file as validated
    run.log              the log
    manifest.json        sha256 and size of every file above
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.records import ATTESTATIONS_FILE, MANIFEST_FILE, canonical_json

EXAMPLES_DIR = "examples"
CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_json(data: Any) -> str:
    return sha256_bytes(json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False).encode())


def digest_tree(root: Path, files: Iterable[Path] | None = None) -> tuple[str, list[dict[str, Any]]]:
    """Digest a folder: one sha256 over (relative path, file sha256) pairs in sorted order."""
    chosen = sorted(files) if files is not None else sorted(p for p in root.rglob("*") if p.is_file())
    entries = []
    outer = hashlib.sha256()
    for file in chosen:
        rel = file.relative_to(root).as_posix()
        file_sha = sha256_file(file)
        entries.append({"path": rel, "sha256": file_sha, "size": file.stat().st_size})
        outer.update(f"{rel}\0{file_sha}\n".encode())
    return outer.hexdigest(), entries


def _umask_mode() -> int:
    """The mode ``open()`` would give a new file (0o666 less the umask). ``mkstemp`` makes its
    file 0600, which left every record, report and leaderboard page unreadable to anyone else
    (a web server serving the site, a colleague reading a shared run folder)."""
    mask = os.umask(0o22)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _umask_mode()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target; the file
    gets the permissions a plain ``open()`` would give it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, canonical_json(data))


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def example_line(row: Mapping[str, Any]) -> str:
    """One canonical JSONL line: sorted keys, compact, NaN refused (callers pass None)."""
    return json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class ExampleLog:
    """Append-only per-example JSONL keyed by ``id``, safe to resume after a crash.

    Every appended line is flushed and fsynced before ``append`` returns, so a finished example
    survives a SIGKILL. On open, a torn last line (no trailing newline, or not JSON) is cut off
    and its example redone; duplicate ids are impossible because finished ids are skipped.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._rows: dict[str, dict[str, Any]] = {}
        self._handle: Any = None

    def open(self) -> ExampleLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._recover()
        self._handle = self.path.open("a", encoding="utf-8")
        return self

    def _recover(self) -> None:
        data = self.path.read_bytes()
        keep = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                break
            if not isinstance(row, dict) or "id" not in row:
                break
            self._rows[str(row["id"])] = row
            keep += len(line)
        if keep != len(data):
            with self.path.open("r+b") as handle:
                handle.truncate(keep)
                handle.flush()
                os.fsync(handle.fileno())

    def __enter__(self) -> ExampleLog:
        return self.open() if self._handle is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    @property
    def done(self) -> Mapping[str, dict[str, Any]]:
        return self._rows

    def append(self, row: Mapping[str, Any]) -> None:
        key = str(row["id"])
        if key in self._rows:
            return
        assert self._handle is not None, "ExampleLog.open() first"
        self._handle.write(example_line(row) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._rows[key] = dict(row)

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append a batch of finished rows with one fsync (a batch is all-or-torn-tail, never lost)."""
        assert self._handle is not None, "ExampleLog.open() first"
        fresh: list[dict[str, Any]] = []
        seen: set[str] = set()
        for row in rows:
            key = str(row["id"])
            if key in self._rows or key in seen:
                continue
            seen.add(key)
            fresh.append(dict(row))
        if not fresh:
            return
        self._handle.write("".join(example_line(r) + "\n" for r in fresh))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        for r in fresh:
            self._rows[str(r["id"])] = r

    def rows_in_order(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        return [self._rows[i] for i in ids if i in self._rows]

    def rewrite_in_order(self, ids: list[str]) -> None:
        """Rewrite the file atomically in the given id order (deterministic final files)."""
        self.close()
        ordered = [self._rows[i] for i in ids if i in self._rows]
        atomic_write_text(self.path, "".join(example_line(r) + "\n" for r in ordered))


BadLine = Callable[[int, str], Exception]  # (line number, what is wrong) -> the error to raise
_LINE_END = re.compile(r"\r\n|\r|\n")


def iter_jsonl(
    path: Path,
    *,
    text: str | None = None,
    on_bad_line: BadLine | None = None,
    skip_bad_lines: bool = False,
) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for every non-blank line of a JSONL file: the one JSONL reader.

    Lines end at ``\n``, ``\r\n`` or ``\r``, as when a text file is read line by line; never at
    U+2028 or the other characters ``str.splitlines`` also cuts at, which a JSON string may hold
    raw (``example_line`` writes them so). A line that does not parse raises
    ``on_bad_line(line number, decoder message)``, by default a ``RecordError`` naming the file
    and line, or is skipped with ``skip_bad_lines`` (a log whose last line a crash tore).
    ``text`` is the file's content when the caller decoded it itself (e.g. with a BOM).
    """
    from harness.errors import RecordError

    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise RecordError(f"{path}: not valid UTF-8 at byte {exc.start}") from None
    for lineno, line in enumerate(_LINE_END.split(text), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            if skip_bad_lines:
                continue
            if on_bad_line is not None:
                raise on_bad_line(lineno, exc.msg) from None
            raise RecordError(f"{path}: line {lineno}: not valid JSON ({exc.msg})") from None
        yield lineno, value


def read_jsonl_values(path: Path) -> list[Any]:
    """Every value of a JSONL file in one ``json.loads`` call (about 4x faster than a call per
    line on many small rows, e.g. a 1,000-entry leaderboard's predictions). On any problem the
    file is read again by ``iter_jsonl``, so an error still names its line."""
    from harness.errors import RecordError

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"{path}: not valid UTF-8 at byte {exc.start}") from None
    lines = [line for line in _LINE_END.split(text) if line.strip()]
    try:
        values = json.loads("[" + ",".join(lines) + "]")
    except json.JSONDecodeError:
        values = None
    if isinstance(values, list) and len(values) == len(lines):
        return values
    return [value for _, value in iter_jsonl(path, text=text)]


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The values of ``iter_jsonl`` (rows of files the harness wrote; a bad line is a RecordError)."""
    for _, row in iter_jsonl(path):
        yield row


def write_manifest(run_dir: Path) -> dict[str, Any]:
    """Digest every file of the run folder except the manifest itself."""
    files = [p for p in run_dir.rglob("*") if p.is_file() and p.name not in (MANIFEST_FILE, ATTESTATIONS_FILE) and not p.name.startswith(".")]
    tree, entries = digest_tree(run_dir, files)
    manifest = {"algorithm": "sha256", "tree_sha256": tree, "files": entries}
    atomic_write_json(run_dir / MANIFEST_FILE, manifest)
    return manifest
