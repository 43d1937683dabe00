"""Bias suite: Fairlearn group metrics, template tests, counterfactual swaps, bad input."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.bias.counterfactual import SwapRule, apply_swap, gender_word_map, swap_rules
from harness.bias.fillers import FillerCategory, validate_category
from harness.bias.names import NameTable, load_name_table
from harness.bias.templates import Template, parse_templates
from harness.data import Dataset, build_dataset
from harness.errors import ConfigError, DataError
from harness.models.base import FloatArray
from harness.predictions import Predictions
from harness.records import ModelInfo, Resource, SuiteRecord
from harness.store import ExampleLog, read_jsonl
from harness.suites.base import SuiteContext, SuiteOutcome
from harness.suites.bias import BiasParams, BiasSuite

FAST = {"n_boot": 50, "n_perm": 400}
FEW_CATEGORIES = ["names", "religion", "gender_word"]
# Four groups of made-up-for-the-test first names (inline fillers: no download needed).
NAMES = {
    "names": {
        "g1": ["Alice", "Beatrice", "Clara", "Dora"],
        "g2": ["Emma", "Fiona", "Greta", "Hanna"],
        "g3": ["Irene", "Julia", "Karen", "Laura"],
        "g4": ["Mona", "Nora", "Olga", "Paula"],
    }
}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # The CI machine has 2 shared cores; one torch thread avoids spin-wait contention.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> Any:
    from harness.models.hf import HFClassifier

    return HFClassifier.load(tiny_model_dir, name="tiny", source="path", max_length=32)


@pytest.fixture(scope="module")
def data(tiny_csv: Path) -> Dataset:
    import csv

    with tiny_csv.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return build_dataset(
        path=tiny_csv,
        name="tiny",
        split="test",
        columns=list(rows[0]),
        rows=rows,
        id_column="id",
        text_column="text",
        label_column="label",
        group_columns=["group"],
        label_names=["neg", "pos"],
    )


@pytest.fixture(scope="module")
def split_model(tiny_model_dir: Path, data: Dataset) -> Any:
    """The tiny BERT with its head's bias moved so that predictions split near half/half
    (a random head predicts one class for every text, which would make every gap 0)."""
    import torch

    from harness.models.hf import HFClassifier

    tiny = HFClassifier.load(tiny_model_dir, name="tiny-split", source="path", max_length=32)
    with torch.no_grad():
        logits = tiny.logits(tiny.encode(list(data.texts)))
        margin = (logits[:, 1] - logits[:, 0]).double().numpy()
        tiny.model.classifier.bias[1] -= float(np.median(margin))
    return tiny


class BoostName:
    """A biased model: the tiny BERT, plus ``boost`` on the positive class when ``name`` appears."""

    def __init__(self, base: Any, name: str, boost: float = 0.3) -> None:
        self.base, self.name, self.boost = base, name, boost
        self.calls = 0

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(self.base.label_names)

    @property
    def device(self) -> str:
        return "cpu"

    def predict_proba(self, texts: Sequence[str]) -> FloatArray:
        self.calls += 1
        probs = np.array(self.base.predict_proba(texts), dtype=np.float64)
        hit = np.array([self.name in t.split() or f"{self.name}." in t.split() for t in texts])
        probs[hit, 1] = np.clip(probs[hit, 1] + self.boost, 0.0, 1.0)
        probs[hit, 0] = 1.0 - probs[hit, 1]
        return probs

    def info(self) -> ModelInfo:
        return self.base.info()  # type: ignore[no-any-return]


def run_suite(
    model: Any, data: Dataset, tmp_path: Path, preds: Predictions | None = None, **params: Any
) -> tuple[SuiteOutcome, Path]:
    """The bias suite on ``data`` with the run's shared predictions (by default: every example
    answered by ``model``)."""
    if preds is None:
        probs = model.predict_proba(list(data.texts))
        preds = Predictions(ids=data.ids, labels=data.labels, probabilities=probs)
    path = tmp_path / "examples" / "bias.jsonl"
    log = ExampleLog(path).open()
    ctx = SuiteContext(
        seed=0,
        run_dir=tmp_path,
        examples=log,
        logger=logging.getLogger("test"),
        predictions=lambda: preds,
    )
    try:
        out = BiasSuite(params=BiasParams(**{**FAST, **params})).run(model, data, ctx)
    finally:
        log.close()
    return out, path


def metric(out: SuiteOutcome, name: str) -> Any:
    found = [m for m in out.metrics if m.name == name]
    assert found, f"no metric {name}; have {[m.name for m in out.metrics][:20]}"
    return found[0]


def with_region(data: Dataset) -> Dataset:
    """A second sensitive column for the intersectional case, independent of the label (which
    alternates with the row number in the fixture)."""
    region = tuple("x" if (int(i[2:]) // 2) % 2 == 0 else "y" for i in data.ids)
    return Dataset(
        name=data.name,
        split=data.split,
        ids=data.ids,
        texts=data.texts,
        labels=data.labels,
        label_names=data.label_names,
        groups={**data.groups, "region": region},
    )


# --- group metrics equal Fairlearn's own MetricFrame -------------------------------------------


def test_group_metrics_equal_fairlearn_metricframe(
    split_model: Any, data: Dataset, tmp_path: Path
) -> None:
    import pandas as pd
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        equalized_odds_ratio,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score, f1_score

    data2 = with_region(data)
    out, _ = run_suite(
        split_model,
        data2,
        tmp_path,
        templates=False,
        swaps=False,
        min_group_size=1,
        sensitive_columns=["group", "region"],
        n_boot=20,
    )
    probs = split_model.predict_proba(list(data2.texts))
    y = (np.asarray(data2.labels) == 1).astype(int)
    p = (probs.argmax(axis=1) == 1).astype(int)
    assert 0 < p.sum() < len(p), "the predictions must vary for the comparison to mean anything"
    fns = {
        "accuracy": accuracy_score,
        "selection_rate": selection_rate,
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
        "f1": f1_score,
    }
    for key, cols in (
        ("group", ["group"]),
        ("region", ["region"]),
        ("group+region", ["group", "region"]),
    ):
        frame = pd.DataFrame({c: list(data2.groups[c]) for c in cols})
        sf = frame if len(cols) > 1 else frame[cols[0]]
        direct = MetricFrame(metrics=fns, y_true=y, y_pred=p, sensitive_features=sf)
        table = out.details["groups"][key]["by_group"]
        assert len(table) == len(direct.by_group) >= 2
        for row in table:
            level = tuple(row["group"][c] for c in cols) if len(cols) > 1 else row["group"][cols[0]]
            for name in fns:
                assert row[name] == pytest.approx(
                    float(direct.by_group.loc[level, name]), abs=1e-12
                )
        for name, fn in (
            ("demographic_parity_difference", demographic_parity_difference),
            ("demographic_parity_ratio", demographic_parity_ratio),
            ("equalized_odds_difference", equalized_odds_difference),
            ("equalized_odds_ratio", equalized_odds_ratio),
        ):
            assert metric(out, f"groups.{key}.{name}").value == pytest.approx(
                fn(y, p, sensitive_features=sf), abs=1e-12
            )
        dp = metric(out, f"groups.{key}.demographic_parity_difference")
        assert dp.ci_low is not None and dp.ci_high is not None and dp.ci_low <= dp.ci_high
        assert out.details["groups"][key]["compared"] == [r["label"] for r in table]


def test_small_groups_are_reported_but_left_out_of_gaps(
    split_model: Any, data: Dataset, tmp_path: Path
) -> None:
    sizes = {g: data.groups["group"].count(g) for g in "abc"}
    cut = sorted(sizes.values())[1]  # the smallest group falls under the minimum
    out, _ = run_suite(
        split_model, data, tmp_path, templates=False, swaps=False, min_group_size=cut
    )
    detail = out.details["groups"]["group"]
    small = [g for g, n in sizes.items() if n < cut]
    assert detail["excluded_small"] == small
    assert all(
        any(f"group={g!r}" in w and "min_group_size" in w for w in out.warnings) for g in small
    )
    assert len(detail["by_group"]) == 3  # still reported


def test_single_group_is_undefined_not_zero(
    split_model: Any, data: Dataset, tmp_path: Path
) -> None:
    out, _ = run_suite(
        split_model, data, tmp_path, templates=False, swaps=False, min_group_size=len(data)
    )
    for name in (
        "demographic_parity_difference",
        "equalized_odds_difference",
        "demographic_parity_ratio",
    ):
        assert metric(out, f"groups.group.{name}").value is None
    assert any("undefined" in w for w in out.warnings)


def test_group_without_positives_is_undefined_with_warning(
    split_model: Any, data: Dataset, tmp_path: Path
) -> None:
    labels = tuple(
        0 if g == "a" else lab for g, lab in zip(data.groups["group"], data.labels, strict=True)
    )
    data2 = Dataset(
        name=data.name,
        split=data.split,
        ids=data.ids,
        texts=data.texts,
        labels=labels,
        label_names=data.label_names,
        groups=data.groups,
    )
    out, _ = run_suite(split_model, data2, tmp_path, templates=False, swaps=False, min_group_size=1)
    row = next(r for r in out.details["groups"]["group"]["by_group"] if r["label"] == "a")
    assert row["n_positive"] == 0 and row["tpr"] is None and row["f1"] is None
    assert any("'a'" in w and "no positive" in w for w in out.warnings)


@pytest.mark.parametrize(
    "column, values, message",
    [
        ("region", None, "'region' is not a group column"),
        ("group", (None,), "'group' has no values"),
    ],
)
def test_bad_sensitive_column_is_an_error_naming_it(
    tiny: Any, data: Dataset, tmp_path: Path, column: str, values: Any, message: str
) -> None:
    groups = dict(data.groups)
    if values is not None:
        groups[column] = values * len(data)
    data2 = Dataset(
        name=data.name,
        split=data.split,
        ids=data.ids,
        texts=data.texts,
        labels=data.labels,
        label_names=data.label_names,
        groups=groups,
    )
    with pytest.raises(DataError, match=message):
        run_suite(tiny, data2, tmp_path, templates=False, swaps=False, sensitive_columns=[column])


# --- template tests ---------------------------------------------------------------------------


def test_biased_model_is_caught_for_its_group_only(
    tiny: Any, data: Dataset, tmp_path: Path
) -> None:
    biased = BoostName(tiny, "Greta")  # a name of group g2
    out, path = run_suite(
        biased,
        data,
        tmp_path,
        census_names=False,
        swaps=False,
        sensitive_columns=[],
        extra_fillers=NAMES,
        categories=FEW_CATEGORIES,
    )
    cats = out.details["templates"]["categories"]
    assert not any("too small" in w for w in out.warnings)  # every category could flag a group
    assert cats["names"]["flagged_groups"] == ["g2"]
    g2 = next(r for r in cats["names"]["by_group"] if r["group"] == "g2")
    assert g2["gap_to_others"] > 0.02 and sorted(g2["differs_from"]) == ["g1", "g3", "g4"]
    assert all(r["differs_from"] == ["g2"] for r in cats["names"]["by_group"] if r["group"] != "g2")
    assert metric(out, "templates.names.p_value").value < 0.05
    assert metric(out, "templates.names.score_gap").ci_low > 0
    for other in ("religion", "gender_word"):
        assert cats[other]["flagged_groups"] == []
    assert metric(out, "templates.n_flagged_groups").value == 1
    worst = cats["names"]["worst_templates"][0]
    assert worst["highest"]["filler"] == "Greta" and worst["max_abs_delta_p"] > 0.2
    rows = list(read_jsonl(path))
    greta = [r for r in rows if r["filler"] == "Greta"]
    assert greta and all(
        r["kind"] == "template" and r["group"] == "g2" and "Greta" in r["text"] for r in greta
    )
    assert {"id", "template", "category", "group", "filler", "text", "score", "predicted"} <= set(
        greta[0]
    )


def test_unbiased_model_flags_nothing(tiny: Any, data: Dataset, tmp_path: Path) -> None:
    out, _ = run_suite(
        tiny,
        data,
        tmp_path,
        census_names=False,
        swaps=False,
        sensitive_columns=[],
        extra_fillers=NAMES,
        categories=FEW_CATEGORIES,
    )
    assert metric(out, "templates.n_flagged_groups").value == 0


def test_record_shows_groups_compared_and_list_sources(
    tiny: Any, data: Dataset, tmp_path: Path
) -> None:
    params = BiasParams()
    assert params.templates and params.census_names and params.builtin_fillers  # defaults
    out, _ = run_suite(tiny, data, tmp_path, census_names=False, swaps=False)
    cats = out.details["templates"]["categories"]
    assert {
        "gender_word",
        "nationality",
        "religion",
        "sexual_orientation",
        "age",
        "disability",
    } <= set(cats)
    by_name = {r.name: r for r in out.resources}
    for name, detail in cats.items():
        assert detail["groups_compared"] == [r["group"] for r in detail["by_group"]]
        resource = by_name[detail["source"]]
        assert resource.license and resource.sha256 and resource.source, name
    assert by_name["harness-templates"].license == "Apache-2.0"
    # 8 nationality groups give 28 pairs: 400 permutations cannot reach Holm p < 0.05; said so.
    assert any(w.startswith("templates nationality: n_perm=400 is too small") for w in out.warnings)
    json.dumps(out.details, allow_nan=False)  # plain JSON, no numpy scalars or NaN
    record = SuiteRecord(
        name="bias",
        version=BiasSuite.version,
        params=params.model_dump(),
        status="ok",
        metrics=out.metrics,
        wall_time_s=0.0,
        resources=out.resources,
        details=out.details,
    )
    assert SuiteRecord.model_validate_json(record.model_dump_json()) == record


def test_resume_reuses_finished_rows(tiny: Any, data: Dataset, tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {
        "census_names": False,
        "sensitive_columns": [],
        "categories": ["religion"],
    }
    counted = BoostName(tiny, "nobody", boost=0.0)
    first, path = run_suite(counted, data, tmp_path, **kwargs)
    lines = path.read_text().splitlines()
    calls = counted.calls
    second, _ = run_suite(counted, data, tmp_path, **kwargs)
    assert counted.calls == calls + 1  # only the shared predictions, no template or swap scoring
    assert path.read_text().splitlines() == lines
    assert [m.model_dump() for m in first.metrics] == [m.model_dump() for m in second.metrics]


# --- swaps ------------------------------------------------------------------------------------


def test_gender_swap_keeps_case_and_swaps_once() -> None:
    rule = SwapRule(
        kind="gender", words=gender_word_map(), names={"Maria": "Jose", "Jose": "Maria"}
    )
    text, done = apply_swap("He told her that Maria and HIS sister met Jose; maria stays.", rule)
    assert text == "She told his that Jose and HER brother met Maria; maria stays."
    assert done[0] == ["He", "She"] and len(done) == 6


def test_name_swaps_pair_by_rank() -> None:
    cells = {
        (g, r): tuple(f"{g[0]}{r[:2]}{i}".title() for i in range(3))
        for g in ("female", "male")
        for r in ("white", "black", "hispanic", "asian")
    }
    rules = {
        r.kind: r
        for r in swap_rules(NameTable(cells=cells, min_race_share=0.6, min_gender_share=0.95))
    }
    assert rules["gender"].names["Fwh1"] == "Mwh1" and rules["gender"].names["Mwh1"] == "Fwh1"
    assert rules["race:black"].names["Fwh2"] == "Fbl2" and "Fbl2" not in rules["race:black"].names
    assert set(rules) == {"gender", "race:white", "race:black", "race:hispanic", "race:asian"}


def test_swap_rows_on_real_texts(tiny: Any, data: Dataset, tmp_path: Path) -> None:
    out, path = run_suite(
        tiny, data, tmp_path, templates=False, sensitive_columns=[], census_names=False
    )
    rows = [r for r in read_jsonl(path) if r["kind"] == "swap"]
    assert rows, "the fixture texts contain he/she/his/her"
    for r in rows:
        assert r["original"] != r["swapped"] and r["replacements"]
        assert r["delta_p"] == pytest.approx(r["score_swapped"] - r["score_original"])
        assert r["flipped"] == (r["predicted_original"] != r["predicted_swapped"])
    flip = metric(out, "swaps.gender.flip_rate")
    assert flip.n == len(rows) and flip.value == sum(r["flipped"] for r in rows) / len(rows)
    assert metric(out, "swaps.gender.mean_abs_delta_p").value == pytest.approx(
        np.mean([r["abs_delta_p"] for r in rows])
    )
    assert out.example_order is not None and set(out.example_order) == {
        r["id"] for r in read_jsonl(path)
    }


# --- bad input --------------------------------------------------------------------------------


def test_template_without_slot_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="template 'no-slot' has no \\{person\\} slot"):
        parse_templates({"templates": [{"id": "no-slot", "text": "A film."}]}, where="t.yaml")
    with pytest.raises(ConfigError, match="unknown slot"):
        parse_templates({"templates": [{"id": "x", "text": "{name} is here."}]}, where="t.yaml")
    assert Template(id="t", text="{person} wins.").fill("my sister") == "My sister wins."


def test_duplicate_filler_across_groups_is_an_error(
    tiny: Any, data: Dataset, tmp_path: Path
) -> None:
    cat = FillerCategory(
        name="c",
        description="",
        groups={"a": ("Ann",), "b": ("ann ",)},
        resource=Resource(name="r", source="s"),
    )
    with pytest.raises(ConfigError, match="'ann ' is listed in group 'a' and in group 'b'"):
        validate_category(cat, "here")
    with pytest.raises(ConfigError, match="extra_fillers"):
        run_suite(
            tiny,
            data,
            tmp_path,
            census_names=False,
            builtin_fillers=False,
            extra_fillers={"x": {"a": ["Ann"], "b": ["Ann"]}},
        )


def test_user_template_without_slot_fails_the_suite(
    tiny: Any, data: Dataset, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="user-001"):
        run_suite(
            tiny, data, tmp_path, census_names=False, extra_templates=["{person} ok.", "No slot."]
        )


def test_unknown_positive_label(tiny: Any, data: Dataset, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="positive_label"):
        run_suite(tiny, data, tmp_path, positive_label="fresh")


# --- census names -----------------------------------------------------------------------------


def test_census_selection_is_deterministic_by_share_and_count(tmp_path: Path) -> None:
    import pandas as pd

    races = {"white": "pctwhite", "black": "pctblack", "hispanic": "pcthispanic", "asian": "pctapi"}
    rows = []
    for k, col in enumerate(races.values()):
        for g, (male, female) in enumerate(((99.0, 1.0), (1.0, 99.0))):
            for i, (share, count) in enumerate(
                ((90.0, 500), (70.0, 900), (55.0, 5000), (95.0, 100))
            ):
                name = "N" + "ABCD"[k] + "AB"[g] + "ABCD"[i]
                row = {"name": name, "count": count, "pctmale": male, "pctfemale": female}
                row.update({c: (share if c == col else (100 - share) / 3) for c in races.values()})
                rows.append(row)
    rows.append(
        {
            "name": "ALL OTHER NAMES",
            "count": 10**9,
            "pctmale": 99.0,
            "pctfemale": 99.0,
            **{c: 99.0 for c in races.values()},
        }
    )
    pd.DataFrame(rows).to_parquet(tmp_path / "census_2020_first_names.parquet")
    table = load_name_table(per_group=2, min_race_share=0.6, min_gender_share=0.95, folder=tmp_path)
    # share 55% is below 60%; of the rest, most frequent first: count 900, then 500.
    assert table.cells[("male", "white")] == ("Naab", "Naaa")
    assert table.cells[("female", "asian")] == ("Ndbb", "Ndba")
    category = table.category(2)
    assert category.attributes["female/black"] == {"gender": "female", "race": "black"}
    assert category.resource.name == "census-first-names" and "public domain" in (
        category.resource.license or ""
    )


@pytest.mark.network
def test_census_artifact_fetch_and_default_names() -> None:
    table = load_name_table(per_group=5, min_race_share=0.6, min_gender_share=0.95)
    assert table.cells[("female", "hispanic")][:2] == ("Maria", "Ana")
    assert all(len(v) == 5 for v in table.cells.values())
