"""What the report's model card shows of a fine-tuned model, and how.

Three things a reader was misled by, fixed here (issue 22):

- the model's location was an absolute path into the harness cache of the machine that ran it
  (``/root/.cache/harness/finetune/0d92…``): meaningless elsewhere and a leak of the runner's
  layout. A cache location is shown as ``harness cache: finetune/0d9264d724ee…`` instead; the
  digest beside it identifies the checkpoint.
- the recipe listed the LoRA hyper-parameters for a full fine-tune: the run file's ``lora``
  block is only read by the ``lora`` method, so it is shown for that method only.
- the dev curve drew loss (unbounded, ~0.4) and accuracy (0..1) on one axis; each kind now
  has its own chart and axis.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from harness.records import ModelInfo
from harness.render.charts import line_chart
from harness.render.html import Markup, el
from harness.render.numbers import is_number

# .../.cache/harness/<area>/<key>... or $HARNESS_CACHE-style roots ending in /harness
CACHE_PATH = re.compile(r"^(?:.*[/\\])?\.?cache[/\\]harness[/\\](?P<rest>.+)$")
CACHE_AREAS = ("finetune", "artifacts")
KEY_CHARS = 12
LORA_METHODS = ("lora",)  # the methods that read FinetuneConfig.lora
X_KEYS = ("step", "epoch")


def _cache_relative(location: str) -> str | None:
    match = CACHE_PATH.match(location)
    if match:
        return match["rest"]
    try:
        from harness.artifacts import cache_root

        root = str(cache_root())
    except Exception:  # only a display nicety; never fail the report for it
        return None
    if location.startswith(root.rstrip("/\\") + "/"):
        return location[len(root.rstrip("/\\")) + 1 :]
    return None


def shown_location(model: ModelInfo) -> str:
    """The model's location as a reader should see it: never an absolute cache path."""
    rest = _cache_relative(model.location)
    if rest is None:
        return model.location
    parts = re.split(r"[/\\]", rest)
    if parts and parts[0] in CACHE_AREAS and len(parts) > 1 and len(parts[1]) > KEY_CHARS:
        parts[1] = parts[1][:KEY_CHARS] + "…"
    return "harness cache: " + "/".join(parts)


def shown_card(card: Mapping[str, Any]) -> dict[str, Any]:
    """The card's entries without the ones that do not apply to its method."""
    shown = dict(card)
    method = card.get("method")
    hyper = card.get("hyperparameters")
    if isinstance(hyper, Mapping) and method not in LORA_METHODS:
        shown["hyperparameters"] = {k: v for k, v in hyper.items() if k != "lora"}
    return shown


def _is_loss(name: str) -> bool:
    return "loss" in name.lower()


def dev_curves(card: Mapping[str, Any]) -> Markup | None:
    """The card's curve (rows with a step/epoch and numbers): losses on one chart, the other
    figures (accuracy, F1: bounded scores) on another, each on its own axis."""
    for key in sorted(card):
        rows = card[key]
        if not (
            isinstance(rows, list) and len(rows) >= 2 and all(isinstance(r, Mapping) for r in rows)
        ):
            continue
        x_key = next((k for k in X_KEYS if all(is_number(r.get(k)) for r in rows)), None)
        if x_key is None:
            continue
        names = sorted({k for r in rows for k, v in r.items() if k not in X_KEYS and is_number(v)})
        series = [
            (n, [(float(r[x_key]), float(r[n])) for r in rows if is_number(r.get(n))])
            for n in names
        ]
        series = [s for s in series if len(s[1]) >= 2]
        losses = [s for s in series if _is_loss(s[0])]
        scores = [s for s in series if not _is_loss(s[0])]
        charts = [
            line_chart(group[:5], title=f"{key}: {label} by {x_key}", x_label=x_key, y_label=label)
            for group, label in ((scores, "score"), (losses, "loss"))
            if group
        ]
        if charts:
            return el("figure", *charts, cls="dev-curves")
    return None
