"""Hostile and broken input end to end: every suite completes, or fails clearly before work starts."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import RecordError
from harness.records import parse_record
from harness.run.pipeline import execute

HOSTILE_TEXTS = [
    "word " * 20_000,  # 100,000 characters
    "tab\tnew\nline\rreturn\x00nul\x07bell",
    "zero\u200bwidth\u200c\u200djoiners\ufeff",
    "\u202eright-to-left override\u202c and עברית and العربية",
    "emoji 😀👍🏽 and combining é and ﬁ ligature",
    "<script>alert(1)</script> \"quotes\" & 'apostrophes'",
    "a",
    "MiXeD CaSe ALL CAPS!!! ???",
]


def test_every_suite_survives_hostile_texts(tmp_path: Path, tiny_model_dir: Path) -> None:
    rows = [{"id": f"h{i}", "text": t, "label": "pos" if i % 2 else "neg", "group": "ab"[i % 2]} for i, t in enumerate(HOSTILE_TEXTS * 3)]
    for i, row in enumerate(rows):
        row["id"] = f"h{i}"
    data = tmp_path / "hostile.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    run = tmp_path / "run.yaml"
    run.write_text(
        json.dumps(
            {
                "seed": 0,
                "threads": 1,
                "dataset": {"path": str(data), "columns": {"id": "id", "groups": ["group"]}, "labels": ["neg", "pos"], "split_fractions": {"test": 1}},
                "model": {"path": str(tiny_model_dir), "max_length": 32},
                "suites": [
                    {"name": "accuracy", "params": {"n_bootstrap": 50}},
                    {"name": "invariance", "params": {"n_bootstrap": 50}},
                    {"name": "explain", "params": {"methods": ["ig", "ablation"], "n_examples": 8, "n_steps": 8, "max_n_steps": 8}},
                    {"name": "robustness", "params": {"recipes": ["deepwordbug"], "n_examples": 6, "workers": 1}},
                    {"name": "bias", "params": {"names_per_group": 1, "swap_max_examples": 10, "n_perm": 99, "min_group_size": 2}},
                ],
            }
        )
    )
    result = execute(run, out_dir=tmp_path / "out")
    assert result.record.status == "complete", [(s.name, s.error) for s in result.record.suites]
    assert result.record.dataset.n_truncated is not None and result.record.dataset.n_truncated >= 3
    for suite in result.record.suites:
        assert suite.status == "ok" and suite.metrics


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10), lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["schema_version", "run_id", "status", "config", "suites", "model", "x"]), c, max_size=5), max_leaves=15))
def test_record_reader_never_crashes(value: object) -> None:
    """Any JSON a reader is handed is a valid record or a RecordError naming the problem."""
    if isinstance(value, dict) and "schema_version" in value and value["schema_version"] is None:
        value["schema_version"] = "1.0"
    try:
        text = json.dumps(value)
    except ValueError:
        return
    try:
        parse_record(text, source="fuzz.json")
    except RecordError as exc:
        assert exc.message.startswith("fuzz.json: ")


def test_record_reader_rejects_garbage_bytes() -> None:
    for text in ("", "{", "[1, 2]", '{"schema_version": "1.0"}', "\udcff"):
        try:
            parse_record(text, source="bad.json")
        except RecordError as exc:
            assert "bad.json" in exc.message
        else:
            raise AssertionError(f"accepted {text!r}")
