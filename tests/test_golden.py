"""Deterministic results equal their committed golden JSON (regenerate: `make golden`)."""

from __future__ import annotations

import pytest

from tests.golden import GOLDEN_DIR, GOLDENS, render


@pytest.mark.parametrize("name", sorted(GOLDENS))
def test_golden(name: str) -> None:
    path = GOLDEN_DIR / name
    assert path.is_file(), f"missing golden file {path}: run `make golden`"
    assert render(name) == path.read_text(encoding="utf-8"), f"{name} changed: if intended, run `make golden` and review the diff"
