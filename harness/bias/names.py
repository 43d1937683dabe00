"""First names associated with gender and race/ethnicity, from the 2020 U.S. Census table.

Selection is deterministic: a name (not one of ``NOT_NAMES``, words like 'Asia' or 'King')
qualifies for cell (gender, race) when at least ``min_race_share`` of its bearers are of that
race/ethnicity and at least ``min_gender_share`` of that sex; each cell keeps its ``per_group`` most frequent names (ties by name). High shares
keep the association strong; frequency keeps the names familiar to a model. Census race
categories are self-reported and coarse ('api' pools Asian and Pacific Islander names), which
the record says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.bias.fillers import FillerCategory, validate_category

RACES: Mapping[str, str] = {
    "white": "pctwhite",
    "black": "pctblack",
    "hispanic": "pcthispanic",
    "asian": "pctapi",
}
GENDERS: Mapping[str, str] = {"female": "pctfemale", "male": "pctmale"}
TABLE_FILE = "census_2020_first_names.parquet"
# Names that are also common English words, titles or places: as fillers they change the
# sentence's meaning, and as swap targets they would match words that are not names.
NOT_NAMES = frozenset(
    [
        "april",
        "asia",
        "august",
        "autumn",
        "bill",
        "cleveland",
        "destiny",
        "essence",
        "faith",
        "fe",
        "genesis",
        "grace",
        "honey",
        "hope",
        "india",
        "israel",
        "joy",
        "june",
        "king",
        "loan",
        "major",
        "mark",
        "may",
        "mercedes",
        "miracle",
        "precious",
        "prince",
        "princess",
        "queen",
        "rich",
        "rose",
        "royal",
        "ruby",
        "sky",
        "star",
        "summer",
        "sunny",
        "valencia",
        "will",
    ]
)
AGGREGATE_ROW = "ALL OTHER NAMES"


@dataclass(frozen=True)
class NameTable:
    """Selected names per (gender, race) cell, most frequent first; display case (``Maria``)."""

    cells: Mapping[tuple[str, str], tuple[str, ...]]
    min_race_share: float
    min_gender_share: float

    def category(self, per_group: int, *, name: str = "first_name") -> FillerCategory:
        from harness.catalog.bias import CENSUS_FIRST_NAMES

        groups = {f"{g}/{r}": names[:per_group] for (g, r), names in self.cells.items()}
        attributes = {f"{g}/{r}": {"gender": g, "race": r} for (g, r) in self.cells}
        resource = CENSUS_FIRST_NAMES.resource().model_copy(
            update={
                "note": (
                    f"{per_group} most frequent names per gender x race cell with race share >= "
                    f"{self.min_race_share:.0%} and sex share >= {self.min_gender_share:.0%}; "
                    "races: white, black, hispanic, asian (census 'api'); names that are also "
                    "common words or places (NOT_NAMES in harness/bias/names.py) left out"
                )
            }
        )
        category = FillerCategory(
            name=name,
            description="First names associated with gender and race/ethnicity (2020 "
            "U.S. Census shares)",
            groups=groups,
            resource=resource,
            attributes=attributes,
        )
        validate_category(category, f"census names ({CENSUS_FIRST_NAMES.name})")
        return category


def display_name(raw: str) -> str:
    """'MARY-JANE' -> 'Mary-Jane'; the census table is upper case."""
    return raw.title()


def load_name_table(
    *, per_group: int, min_race_share: float, min_gender_share: float, folder: Path | None = None
) -> NameTable:
    """Select names from the census artifact (fetched and verified unless ``folder`` is given)."""
    import pandas as pd

    if folder is None:
        from harness.artifacts import fetch
        from harness.catalog.bias import CENSUS_FIRST_NAMES

        folder = fetch(CENSUS_FIRST_NAMES.name)
    df = pd.read_parquet(folder / TABLE_FILE)
    df = df[(df["name"] != AGGREGATE_ROW) & df["name"].str.fullmatch(r"[A-Z][A-Z'\-]+")]
    df = df[~df["name"].str.lower().isin(NOT_NAMES)]
    cells: dict[tuple[str, str], tuple[str, ...]] = {}
    for gender, gcol in GENDERS.items():
        for race, rcol in RACES.items():
            chosen = df[(df[rcol] >= 100 * min_race_share) & (df[gcol] >= 100 * min_gender_share)]
            chosen = chosen.sort_values(
                ["count", "name"], ascending=[False, True], kind="mergesort"
            )
            cells[(gender, race)] = tuple(display_name(n) for n in chosen["name"].head(per_group))
    return NameTable(cells=cells, min_race_share=min_race_share, min_gender_share=min_gender_share)
