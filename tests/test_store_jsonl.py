"""The one JSONL reader (``harness.store.iter_jsonl``): lines, errors, torn logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import DataError, RecordError
from harness.store import ExampleLog, iter_jsonl, read_jsonl


def test_rows_with_line_numbers_and_text_a_json_string_may_hold(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    with ExampleLog(path) as log:  # the writer keeps U+2028 and U+0085 raw (ensure_ascii=False)
        log.append({"id": "a", "text": "one\u2028two\x85three"})
    path.write_bytes(path.read_bytes() + b"\r\n\n" + b'{"id": "b"}\r{"id": "c"}\n')
    assert list(iter_jsonl(path)) == [
        (1, {"id": "a", "text": "one\u2028two\x85three"}),
        (4, {"id": "b"}),
        (5, {"id": "c"}),
    ]
    assert [r["id"] for r in read_jsonl(path)] == ["a", "b", "c"]


def test_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1}\n{"id": \n{"id": 3}\n', encoding="utf-8")
    with pytest.raises(RecordError, match=r"bad\.jsonl: line 2: not valid JSON \(Expecting value\)"):
        list(read_jsonl(path))
    with pytest.raises(DataError, match=r"^row 2: Expecting value$"):
        list(iter_jsonl(path, on_bad_line=lambda n, problem: DataError(f"row {n}: {problem}")))
    assert [n for n, _ in iter_jsonl(path, skip_bad_lines=True)] == [1, 3]
    path.write_bytes(b'{"id": "\xff"}\n')
    with pytest.raises(RecordError, match="not valid UTF-8 at byte 8"):
        list(iter_jsonl(path))


def test_atomic_writes_get_the_mode_open_would_give(tmp_path: Path) -> None:
    """mkstemp makes 0600 files: records, reports and leaderboard pages were unreadable to a web
    server or a colleague. An atomic write now has the mode a plain open() gets under the umask."""
    import os
    import stat

    from harness.store import atomic_write_json

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    target = tmp_path / "record.json"
    atomic_write_json(target, {"a": 1})
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    old = os.umask(0o077)
    try:
        from harness import store

        assert store._umask_mode() == 0o600
    finally:
        os.umask(old)
