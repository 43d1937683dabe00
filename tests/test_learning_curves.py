"""The leaderboard's learning-curve chart: accuracy vs shots per method, averaged over seeds.

Entries are real verified entry folders (synthetic records, as the leaderboard's own tests
build them) whose run configs name a fine-tuning method and shots; the chart's numbers are
checked against numpy / scipy computed here from the records.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from harness.leaderboard.curves import CHART_ID, cell_of
from harness.leaderboard.entries import SOURCE_FILE
from harness.leaderboard.site import build_site
from harness.leaderboard.synthetic import Spec, make_record
from harness.records import PREDICTIONS_FILE, RECORD_FILE, dump_record
from harness.render.numbers import SITE_MISSING, fmt_site
from harness.store import sha256_bytes, write_manifest


def add_entry(entries: Path, spec: Spec, config: dict[str, Any], **update: Any) -> float:
    """A verified entry whose record carries ``config`` (and ``update``); returns its accuracy."""
    record, rows = make_record(spec)
    record = record.model_copy(update={"config": {"name": spec.name, **config}, **update})
    text = dump_record(record)
    folder = entries / f"{spec.name}-{sha256_bytes(text.encode())[:12]}"
    folder.mkdir(parents=True)
    (folder / RECORD_FILE).write_text(text, encoding="utf-8")
    trimmed = [{"id": r["id"], "label": r["label"], "predicted": r["predicted"]} for r in rows]
    (folder / PREDICTIONS_FILE).write_text(
        "".join(json.dumps(r, sort_keys=True) + "\n" for r in trimmed)
    )
    (folder / SOURCE_FILE).write_text(
        json.dumps(
            {"run_id": record.run_id, "run_manifest_tree_sha256": None, "record_sha256": None}
        )
    )
    write_manifest(folder)
    metric = record.suites[0].metric("accuracy")
    assert metric is not None and metric.value is not None
    return metric.value


def ft(method: str, shots: int | None) -> dict[str, Any]:
    return {"finetune": {"method": method, **({"shots": shots} if shots is not None else {})}}


def svg_of(html: str) -> str:
    found = re.search(rf'<svg[^>]*aria-labelledby="{CHART_ID}-t[^"]*".*?</svg>', html, re.S)
    assert found, "no learning-curve chart on the page"
    return found.group(0)


def test_curve_averages_seeds_with_a_student_t_interval(tmp_path: Path) -> None:
    entries = tmp_path / "entries"
    acc: dict[tuple[str, int | None], list[float]] = {}
    for n, (method, shots, seed, a) in enumerate([
        ("setfit", 8, 0, 0.70), ("setfit", 8, 1, 0.74), ("setfit", 8, 2, 0.78),
        ("setfit", 16, 0, 0.80), ("full", 8, 0, 0.60), ("full", 16, 0, 0.66), ("full", None, 0, 0.85),
    ]):  # fmt: skip
        spec = Spec(f"m{n}", a, seed=seed + 10 * n)
        acc.setdefault((method, shots), []).append(
            add_entry(entries, spec, {**ft(method, shots), "seed": seed})
        )
    zero = add_entry(entries, Spec("zs", 0.69, seed=99), {"model": {"kind": "zero-shot-embedding"}})
    build_site(entries, tmp_path / "site")
    svg = svg_of((tmp_path / "site" / "index.html").read_text())
    three = acc[("setfit", 8)]
    half = stats.t.ppf(0.975, 2) * np.std(three, ddof=1) / np.sqrt(3)
    mean = float(np.mean(three))
    assert (
        f"setfit, 8 shots: {fmt_site(mean)} [{fmt_site(mean - half)}, {fmt_site(mean + half)}] (3 runs)"
        in svg
    )
    assert f"full, all shots: {fmt_site(acc[('full', None)][0])}" in svg
    assert f"zero-shot-embedding, 0 shots: {fmt_site(zero)} [" in svg and "(1 run)" in svg
    ticks = re.findall(r">(0|8|16|all)</text>", svg)
    assert ticks == ["0", "8", "16", "all"]  # categorical axis, in order, "all" last
    assert svg.count('class="curve"') == 3  # one line per method
    assert svg_of(
        next((tmp_path / "site").rglob("accuracy.html")).read_text()
    )  # the suite page too


def test_no_chart_without_a_method_at_two_shot_settings(tmp_path: Path) -> None:
    entries = tmp_path / "entries"
    add_entry(entries, Spec("a", 0.8, seed=1), ft("full", None))
    add_entry(entries, Spec("b", 0.7, seed=2), ft("head", 8))
    build_site(entries, tmp_path / "site")
    assert f'aria-labelledby="{CHART_ID}-t' not in (tmp_path / "site" / "index.html").read_text()


@pytest.mark.parametrize(
    ("config", "cell"),
    [
        ({"finetune": {"method": "lora"}}, ("lora", None)),
        ({"finetune": {"method": "setfit", "shots": 16}}, ("setfit", 16)),
        ({"finetune": {}}, ("full", None)),
        ({"model": {"kind": "masked-lm"}}, ("masked-lm", 0)),
        ({"model": {"artifact": "minilm-l6"}}, None),
        ({}, None),
    ],
)
def test_cell_of_a_run_config(config: dict[str, Any], cell: tuple[str, int | None] | None) -> None:
    assert cell_of(config) == cell


def test_summary_table_shows_method_shots_trainable_parameters_and_training_time(
    tmp_path: Path,
) -> None:
    from harness.records import TrainingInfo

    entries = tmp_path / "entries"
    info = TrainingInfo(
        method="setfit",
        shots=16,
        n_train=32,
        trainable_parameters=22_713_986,
        train_wall_time_s=41.25,
    )
    record, _ = make_record(Spec("sf", 0.8, seed=3))
    add_entry(
        entries,
        Spec("sf", 0.8, seed=3),
        {},
        model=record.model.model_copy(update={"training": info}),
    )
    card = {
        "method": "head",
        "hyperparameters": {"trainable_parameters": 770},
        "training": {"wall_time_s": 171.177},
    }
    add_entry(
        entries, Spec("old", 0.7, seed=4, model_card=card), {}
    )  # a record from before model.training
    add_entry(entries, Spec("plain", 0.6, seed=5), {})
    build_site(entries, tmp_path / "site")
    html = (tmp_path / "site" / "index.html").read_text()
    html = html[html.index('id="t-summary"') :].split("</table>")[0]  # the summary table only
    rows = {
        m.group(1): m.group(0) for m in re.finditer(r'<tr data-name="([^"]+)">.*?</tr>', html, re.S)
    }
    assert (
        '<td>setfit</td><td class="num" data-v="16">16</td><td class="num" data-v="22713986">22,713,986</td><td class="num" data-v="41.25">41.2</td>'
        in rows["sf"].replace("\n", "")
    )
    assert (
        '<td>head</td><td class="num" data-v="">all</td><td class="num" data-v="770">770</td><td class="num" data-v="171.177">171.2</td>'
        in rows["old"].replace("\n", "")
    )
    missing = f"<td>{SITE_MISSING}</td>" + f'<td class="num" data-v="">{SITE_MISSING}</td>' * 3
    assert rows["plain"].replace("\n", "").endswith(missing + "</tr>")  # unknown, not zero
