"""How each entry was adapted to the task, as columns beside its scores: the adaptation method,
shots per class, trainable parameters and training time (issue: paradigms side by side).

Read from the record's ``model.training``; a record written before that field existed falls
back to its fine-tune model card (``hyperparameters.trainable_parameters``,
``training.wall_time_s``); a model with neither shows the missing mark, never a zero it did not
report.
"""

from __future__ import annotations

from typing import Any

from harness.leaderboard.entries import Entry
from harness.leaderboard.tables import sort_th
from harness.render.html import Markup, el
from harness.render.numbers import SITE_MISSING, fmt_fixed


def heads() -> list[Markup]:
    return [
        sort_th("Method"),
        sort_th("Shots", kind="num"),
        sort_th("Trainable params", kind="num"),
        sort_th("Train time (s)", kind="num"),
    ]


def facts(entry: Entry) -> tuple[str | None, int | None, int | None, float | None]:
    """(method, shots, trainable parameters, training seconds) of the entry, None where unknown."""
    info = entry.record.model.training
    if info is not None:
        return info.method, info.shots, info.trainable_parameters, info.train_wall_time_s
    card: dict[str, Any] = entry.record.model.model_card or {}
    hyper, training = card.get("hyperparameters") or {}, card.get("training") or {}
    method = card.get("method") or hyper.get("method")
    params, seconds = hyper.get("trainable_parameters"), training.get("wall_time_s")
    return (
        str(method) if method is not None else None,
        hyper.get("shots"),
        int(params) if isinstance(params, int | float) else None,
        float(seconds) if isinstance(seconds, int | float) else None,
    )


def _num(value: float | None, shown: str) -> Markup:
    if value is None:
        return el("td", SITE_MISSING, cls="num", data_v="")
    return el("td", shown, cls="num", data_v=repr(value))


def _shots(method: str | None, shots: int | None) -> Markup:
    """K per class; "all" for a fine-tune on the whole train split; 0 for no training."""
    if shots is None and method == "none":
        shots = 0
    if shots is not None:
        return _num(shots, str(shots))
    return el("td", SITE_MISSING if method is None else "all", cls="num", data_v="")


def cells(entry: Entry) -> list[Markup]:
    method, shots, params, seconds = facts(entry)
    return [
        el("td", method or SITE_MISSING),
        _shots(method, shots),
        _num(params, f"{params:,}" if params is not None else ""),
        _num(seconds, fmt_fixed(seconds, 1) if seconds is not None else ""),
    ]
