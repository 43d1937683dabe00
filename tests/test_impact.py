"""Impact ratios (NYC LL144): a hand computation on known selection rates, the four-fifths flag at
its edge, the ratio interval against statsmodels, and the bias suite's hook on a real model."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.bias.impact import (
    MSG_EXCLUDED,
    ImpactInput,
    impact_tables,
    ratio_interval,
)

# (sex, race, n, selected): 320 people; sex unknown for 10, race unknown for 6; the F & C cell
# is 4 people (1.25% < 2%).
CELLS = [
    ("F", "A", 100, 60),
    ("F", "B", 50, 20),
    ("M", "A", 120, 90),
    ("M", "B", 30, 12),
    (None, "A", 10, 5),
    ("M", None, 6, 1),
    ("F", "C", 4, 4),
]


def _fixture() -> ImpactInput:
    sex: list[str | None] = []
    race: list[str | None] = []
    selected: list[bool] = []
    for s, r, n, k in CELLS:
        sex += [s] * n
        race += [r] * n
        selected += [True] * k + [False] * (n - k)
    rng = np.random.default_rng(0)
    sel = np.array(selected)
    scores = np.where(sel, 0.6, 0.3) + rng.uniform(0, 0.2, size=sel.size)
    return ImpactInput(selected=sel, scores=scores, groups={"sex": sex, "race": race})


def _table(result: Any, key: str) -> dict[str, Any]:
    return next(t for t in result.details["tables"] if t["key"] == key)


def _by_category(table: dict[str, Any], rate: str = "selection") -> dict[str, dict[str, Any]]:
    return {row["category"]: row for row in table[rate]}


@pytest.fixture(scope="module")
def result() -> Any:
    return impact_tables(_fixture(), ["sex", "race"], intersectional=True, min_share=0.02)


def test_selection_rates_and_ratios_equal_the_hand_computation(result: Any) -> None:
    sex = _by_category(_table(result, "sex"))
    # F: 100+50+4 assessed, 60+20+4 selected; M: 120+30+6, 90+12+1. Reference: M.
    assert (sex["F"]["n"], sex["F"]["selected"]) == (154, 84)
    assert (sex["M"]["n"], sex["M"]["selected"]) == (156, 103)
    assert sex["F"]["rate"] == pytest.approx(84 / 154, abs=1e-15)
    assert sex["M"]["reference"] and sex["M"]["impact_ratio"] == 1.0
    assert sex["F"]["impact_ratio"] == pytest.approx(float(Fraction(84, 154) / Fraction(103, 156)), abs=1e-15)
    assert sex["F"]["below_four_fifths"] is False  # 0.826
    race = _by_category(_table(result, "race"))
    assert (race["A"]["n"], race["A"]["selected"]) == (230, 155)
    assert (race["B"]["n"], race["B"]["selected"]) == (80, 32)
    assert race["B"]["impact_ratio"] == pytest.approx(float(Fraction(32, 80) / Fraction(155, 230)), abs=1e-15)
    assert race["B"]["below_four_fifths"] is True  # 0.594


def test_intersectional_cells_and_the_four_fifths_edge(result: Any) -> None:
    table = _table(result, "sex+race")
    cells = _by_category(table)
    assert set(cells) == {"F & A", "F & B", "M & A", "M & B", "F & C"}
    assert cells["M & A"]["reference"]  # 90/120 = 0.75, the most selected
    # F & A: 0.60 / 0.75 is exactly 4/5, which the rule does not flag ("less than 80%").
    assert cells["F & A"]["impact_ratio"] == pytest.approx(0.8, abs=1e-15)
    assert cells["F & A"]["below_four_fifths"] is False
    assert cells["F & B"]["impact_ratio"] == pytest.approx(0.4 / 0.75, abs=1e-15)
    assert cells["F & B"]["below_four_fifths"] is True
    assert cells["M & B"]["below_four_fifths"] is True
    flagged = {c for c, row in cells.items() if row["below_four_fifths"]}
    assert flagged == {"F & B", "M & B"}
    n_below = next(m for m in result.metrics if m.name == "impact.sex+race.n_below_four_fifths")
    assert n_below.value == 2


def test_rates_and_smallest_ratio_equal_fairlearn(result: Any) -> None:
    """Fairlearn's selection_rate per group and demographic_parity_ratio (min rate / max rate) on
    the people of known category; the small category F & C is left out of both, as LL144 allows."""
    from fairlearn.metrics import MetricFrame, demographic_parity_ratio, selection_rate

    data = _fixture()
    for key, columns in (("sex", ["sex"]), ("race", ["race"]), ("sex+race", ["sex", "race"])):
        cats = [" & ".join(str(data.groups[c][i]) for c in columns) for i in range(len(data.selected))]
        known = np.array([all(data.groups[c][i] is not None for c in columns) for i in range(len(cats))])
        small = {r["category"] for r in _table(result, key)["selection"] if r["excluded_small"]}
        keep = known & np.array([c not in small for c in cats])
        y = data.selected[keep].astype(int)
        groups = np.array(cats, dtype=object)[keep]
        frame = MetricFrame(metrics=selection_rate, y_true=y, y_pred=y, sensitive_features=groups)
        rows = _by_category(_table(result, key))
        for category, rate in frame.by_group.items():
            assert rows[str(category)]["rate"] == pytest.approx(rate, abs=1e-15)
        minimum = next(m for m in result.metrics if m.name == f"impact.{key}.min_impact_ratio")
        expected = demographic_parity_ratio(y, y, sensitive_features=groups)
        assert minimum.value == pytest.approx(expected, abs=1e-15)


def test_unknown_categories_are_counted_not_guessed(result: Any) -> None:
    assert _table(result, "sex")["n_unknown"] == 10
    assert _table(result, "race")["n_unknown"] == 6
    assert _table(result, "sex+race")["n_unknown"] == 16
    unknown = {m.name: m.value for m in result.metrics if m.name.endswith("n_unknown")}
    assert unknown == {"impact.sex.n_unknown": 10, "impact.race.n_unknown": 6, "impact.sex+race.n_unknown": 16}
    assert sum(r["n"] for r in _table(result, "sex+race")["selection"]) == 320 - 16


def test_small_categories_are_listed_with_the_reason_and_left_out_of_ratios(result: Any) -> None:
    for key in ("race", "sex+race"):
        small = [r for r in _table(result, key)["selection"] if r["excluded_small"]]
        assert [r["category"] for r in small] == (["C"] if key == "race" else ["F & C"])
        row = small[0]
        assert (row["n"], row["selected"], row["rate"]) == (4, 4, 1.0)  # counts and rate kept
        assert row["impact_ratio"] is None and row["below_four_fifths"] is None
        assert row["exclusion_reason"] == MSG_EXCLUDED.format(share=4 / 320, n=320, limit=0.02)
    # C (rate 1.0) would have been the reference had it counted: A is.
    assert _by_category(_table(result, "race"))["A"]["reference"]
    kept = impact_tables(_fixture(), ["race"], intersectional=False, min_share=0.0)
    assert _by_category(_table(kept, "race"))["C"]["reference"]


def test_scoring_rates_use_the_median_of_everyone_assessed(result: Any) -> None:
    data = _fixture()
    median = float(np.median(data.scores))
    race = np.array(data.groups["race"], dtype=object)
    table = _table(result, "race")
    assert table["score_median"] == median
    for row in table["scoring"]:
        mask = race == row["category"]
        assert row["n"] == int(mask.sum())
        assert row["selected"] == int((data.scores[mask] > median).sum())


def test_rate_intervals_are_wilson_as_statsmodels_computes_them(result: Any) -> None:
    from statsmodels.stats.proportion import proportion_confint

    for table in result.details["tables"]:
        for row in table["selection"]:
            low, high = proportion_confint(row["selected"], row["n"], alpha=0.05, method="wilson")
            assert row["rate_ci"] == pytest.approx([low, high], abs=1e-12)


def test_ratio_interval_equals_statsmodels_koopman_score_interval() -> None:
    """Interior counts: statsmodels' closed form. It is wrong when a rate is 0 or 1 (its cubic's
    roots degenerate: a lower bound above the estimate), so there our bounds are checked as
    the points where statsmodels' own score test crosses p = 0.05."""
    from statsmodels.stats.proportion import confint_proportions_2indep

    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(400):
        n1, n0 = (int(v) for v in rng.integers(2, 300, size=2))
        x1, x0 = int(rng.integers(1, n1)), int(rng.integers(1, n0))
        ours = ratio_interval(x1, n1, x0, n0)
        low, high = confint_proportions_2indep(x1, n1, x0, n0, compare="ratio", method="score", correction=False)
        assert ours.low == pytest.approx(float(np.real(low)), rel=1e-7)
        assert ours.high == pytest.approx(float(np.real(high)), rel=1e-7)
        checked += 1
    assert checked == 400


@pytest.mark.parametrize(("x1", "n1", "x0", "n0"), [(5, 10, 10, 10), (10, 10, 10, 10), (1, 1, 1, 1), (66, 189, 124, 124), (3, 3, 16, 175)])
def test_ratio_interval_at_rates_of_one_inverts_the_score_test(x1: int, n1: int, x0: int, n0: int) -> None:
    from statsmodels.stats.proportion import score_test_proportions_2indep

    ours = ratio_interval(x1, n1, x0, n0)
    assert ours.low is not None and ours.high is not None
    assert ours.low <= (x1 / n1) / (x0 / n0) <= ours.high
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for bound in (ours.low, ours.high):
            p = score_test_proportions_2indep(x1, n1, x0, n0, value=bound, compare="ratio", correction=False).pvalue
            assert float(p) == pytest.approx(0.05, abs=1e-6)


def test_ratio_interval_edges() -> None:
    zero = ratio_interval(0, 10, 5, 10)
    assert zero.low == 0.0 and zero.high is not None and 0 < zero.high < 1
    assert ratio_interval(3, 10, 0, 10).low is None  # no reference rate: undefined
    assert ratio_interval(0, 0, 1, 1).low is None
    one = ratio_interval(1, 1, 1, 1)
    assert one.low is not None and one.high is not None and one.low < 1 < one.high


def test_edge_tables() -> None:
    # Nobody selected: every ratio undefined, said in a warning, never 0.
    none = ImpactInput(np.zeros(4, dtype=bool), np.full(4, 0.1), {"g": ["a", "a", "b", "b"]})
    out = impact_tables(none, ["g"], intersectional=True, min_share=0.02)
    assert all(r["impact_ratio"] is None for r in out.details["tables"][0]["selection"])
    assert any("every impact ratio is undefined" in w for w in out.warnings)
    assert next(m for m in out.metrics if m.name == "impact.g.min_impact_ratio").value is None
    # One category: its ratio is 1, nothing flagged. Everyone unknown: no category at all.
    one = impact_tables(ImpactInput(np.array([True, False]), np.array([0.9, 0.1]), {"g": ["a", "a"]}), ["g"], intersectional=True, min_share=0.02)
    assert one.details["tables"][0]["selection"][0]["impact_ratio"] == 1.0
    empty = impact_tables(ImpactInput(np.array([True]), np.array([0.9]), {"g": [None]}), ["g"], intersectional=True, min_share=0.02)
    assert empty.details["tables"][0]["selection"] == [] and empty.details["tables"][0]["n_unknown"] == 1
    nothing = impact_tables(ImpactInput(np.zeros(0, dtype=bool), np.zeros(0), {"g": []}), ["g"], intersectional=True, min_share=0.02)
    assert nothing.details["tables"][0]["n_assessed"] == 0 and math.isnan(nothing.details["tables"][0]["score_median"]) is True


def test_bias_suite_records_impact_ratios_and_membership_rows(tmp_path: Path, tiny_model_dir: Path, tiny_csv: Path) -> None:
    import csv

    from harness.data import build_dataset
    from harness.models.hf import HFClassifier
    from harness.store import read_jsonl
    from tests.test_bias import data as _  # noqa: F401  (fixtures live there)
    from tests.test_bias import run_suite, with_region

    with tiny_csv.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    data = with_region(build_dataset(
        path=tiny_csv, name="tiny", split="test", columns=list(rows[0]), rows=rows, id_column="id",
        text_column="text", label_column="label", group_columns=["group"], label_names=["neg", "pos"],
    ))
    model = HFClassifier.load(tiny_model_dir, name="tiny", source="path", max_length=32)
    out, path = run_suite(model, data, tmp_path, templates=False, swaps=False)
    impact = out.details["impact"]
    assert [t["key"] for t in impact["tables"]] == ["group", "region", "group+region"]
    probs = model.predict_proba(list(data.texts))
    selected = probs.argmax(axis=1) == 1
    groups = np.array(data.groups["group"])
    for row in impact["tables"][0]["selection"]:
        mask = groups == row["category"]
        assert (row["n"], row["selected"]) == (int(mask.sum()), int(selected[mask].sum()))
    members = [r for r in read_jsonl(path) if r.get("kind") == "member"]
    assert len(members) == len(data.ids)
    assert members[0]["groups"] == {"group": data.groups["group"][0], "region": data.groups["region"][0]}
    assert any("Koopman" in d for d in out.departures)
