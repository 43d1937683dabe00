"""The example explorer: every evaluation example of the run, inside the self-contained report.

One row per example of ``predictions.jsonl`` — label, prediction, confidence, correct or not —
joined with what the suites recorded about it in their per-example files: its text (where a
suite kept it), its group or slice membership, each attack's outcome and adversarial text, the
perturbations and swaps that flipped it, and its attribution heat-map. The data travels as one
JSON block (``<script type="application/json">``, never executed, with ``<``, ``>`` and ``&``
escaped so no text can close it); ``explorer.js``, the report's one inline script, builds the
table from it with ``textContent`` only, so a hostile text renders as text. The report's CSP
allows that script by its sha256 (``SCRIPT_HASH``) and nothing else.

Rows are joined on the example id: a per-example row's ``example_id`` if it has one, else its
``id``. Texts come from ``original_text``, ``text`` or ``original`` fields (templates, which are
not evaluation examples, are skipped), or the explained words.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from importlib.resources import files
from typing import Any

from harness.render.html import Markup, el, raw
from harness.reports.view import RunView

SECTION = ("explorer", "Example explorer")
DATA_ID = "explorer-data"
PAGE_SIZE = 50
TEXT_FIELDS = ("original_text", "text", "original")
METHOD_ORDER = ("ig", "integrated_gradients", "gradient_shap", "ablation", "occlusion")


@cache
def script() -> str:
    return files("harness.reports").joinpath("explorer.js").read_text(encoding="utf-8")


@cache
def stylesheet() -> str:
    return files("harness.reports").joinpath("explorer.css").read_text(encoding="utf-8")


def script_hash() -> str:
    """The CSP source that allows exactly the explorer's inline script."""
    digest = hashlib.sha256(script().encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _base(prediction: dict[str, Any]) -> dict[str, Any]:
    probs = prediction.get("probabilities")
    confidence = max(probs) if isinstance(probs, list) and probs else None
    predicted, label = prediction.get("predicted"), prediction.get("label")
    return {
        "id": str(prediction.get("id")),
        "label": None if label is None else str(label),
        "pred": None if predicted is None else str(predicted),
        "conf": confidence,
        "probs": probs if isinstance(probs, list) else None,
        "ok": None if predicted is None else predicted == label,
        "err": prediction.get("error"),
        "text": None,
        "groups": [],
        "attacks": [],
        "flips": [],
        "heat": None,
    }


def _membership(row: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key in ("groups", "slices"):
        value = row.get(key)
        if isinstance(value, dict):
            out += [f"{k}={v}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))
                    if v is not None and v is not False]
        elif isinstance(value, list):
            out += [str(v) for v in value if isinstance(v, (str, int))]
    return out


def _heat(row: dict[str, Any]) -> dict[str, Any] | None:
    words, attributions = row.get("words"), row.get("attributions")
    if not (isinstance(words, list) and isinstance(attributions, dict)):
        return None
    methods = sorted(
        (k for k, v in attributions.items() if isinstance(v, list) and len(v) == len(words)),
        key=lambda k: (METHOD_ORDER.index(k) if k in METHOD_ORDER else len(METHOD_ORDER), k),
    )
    if not methods:
        return None
    return {"words": [str(w) for w in words], "methods": {m: attributions[m] for m in methods}}


def _merge(entry: dict[str, Any], suite: str, row: dict[str, Any]) -> None:
    """What one per-example row says about its example."""
    if entry["text"] is None and row.get("kind") != "template":
        text = next((row[f] for f in TEXT_FIELDS if isinstance(row.get(f), str)), None)
        entry["text"] = text
    entry["groups"] += [g for g in _membership(row) if g not in entry["groups"]]
    if isinstance(row.get("recipe"), str) and isinstance(row.get("result"), str):
        entry["attacks"].append({
            "recipe": row["recipe"], "result": row["result"],
            "text": row.get("perturbed_text") if isinstance(row.get("perturbed_text"), str) else None,
        })  # fmt: skip
    if row.get("flipped") is True:
        what = row.get("perturbation") or row.get("swap") or suite
        entry["flips"].append(f"{suite}:{what}")
    heat = _heat(row)
    if heat is not None and entry["heat"] is None:
        entry["heat"] = heat
        if entry["text"] is None:
            entry["text"] = " ".join(heat["words"])


def explorer_rows(view: RunView) -> list[dict[str, Any]]:
    """Every evaluation example, in predictions.jsonl order, with what the suites said of it."""
    entries: dict[str, dict[str, Any]] = {}
    for prediction in view.predictions:
        entry = _base(prediction)
        entries.setdefault(entry["id"], entry)
    for suite, rows in zip(view.record.suites, view.examples, strict=True):
        for row in rows:
            key = row.get("example_id", row.get("id"))
            found = entries.get(str(key)) if key is not None else None
            if found is not None:
                _merge(found, suite.name, row)
    return list(entries.values())


def data_json(rows: list[dict[str, Any]]) -> str:
    """JSON safe inside a <script> element: nothing in it can end the element or open a tag."""
    text = json.dumps(
        {"rows": rows, "pageSize": PAGE_SIZE}, ensure_ascii=False, separators=(",", ":"),
        allow_nan=False, sort_keys=True,
    )
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):  # fmt: skip
        text = text.replace(char, escape)
    return text


def _controls() -> Markup:
    def select(name: str, label: str) -> Markup:
        return el("label", label, " ", el("select", el("option", "any", value=""), data_filter=name))

    return el(
        "div",
        el("label", "Search ", el("input", type="search", placeholder="id or text", data_filter="q")),
        select("correct", "Correct"),
        select("label", "Label"),
        select("pred", "Predicted"),
        select("attack", "Attack"),
        select("group", "Group / slice"),
        el("label", el("input", type="checkbox", data_filter="flipped"), " flipped by a perturbation"),
        el("label", el("input", type="checkbox", data_filter="heat"), " has attributions"),
        cls="ex-controls",
    )


def section_body(view: RunView) -> list[Markup]:
    rows = explorer_rows(view)
    with_text = sum(1 for r in rows if r["text"] is not None)
    columns = (("id", "Id"), ("text", "Text"), ("label", "Label"), ("pred", "Predicted"),
               ("conf", "Confidence"), ("ok", "Correct"), ("groups", "Groups / slices"),
               ("attacks", "Attacks"), ("flips", "Flipped by"))  # fmt: skip
    head = el("tr", [el("th", title, scope="col", data_sort=key, tabindex="0") for key, title in columns])
    return [
        el("p", f"{len(rows)} evaluation examples ({with_text} with their text in a per-example "
                "file). Click a column to sort, a row for its details (probabilities, adversarial "
                "texts, attribution heat-map).", cls="muted"),
        el("noscript", el("p", "The explorer needs JavaScript; the same data is in "
                               "predictions.jsonl and examples/*.jsonl.")),
        _controls(),
        el("p", "", cls="ex-status", aria_live="polite"),
        el("table", el("thead", head), el("tbody"), cls="data ex-table"),
        el("div", el("button", "◀ previous", type="button", data_page="-1"), " ",
           el("span", "", cls="ex-page"), " ",
           el("button", "next ▶", type="button", data_page="1"), cls="ex-pager"),
        el("script", raw(data_json(rows)), type="application/json", id=DATA_ID),
        el("script", raw(script())),
    ]
