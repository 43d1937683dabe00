"""A run folder with many evaluation examples for the example explorer's tests.

Every example has a text (in a 'data'-suite-like file with slice membership), a prediction and
group membership rows; a share of them were attacked, perturbed or explained. Some texts are
hostile (markup, a closing script tag, bidi and line-separator characters).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.records import (
    DatasetInfo,
    ModelInfo,
    Provenance,
    RunRecord,
    SplitInfo,
    SuiteRecord,
    dump_record,
)
from harness.store import example_line, write_manifest

HOSTILE_TEXTS = (
    "</script><script>window.__pwned=1</script>",
    '"><img src=x onerror="window.__pwned=1">',
    "&lt;b&gt; &amp; \u202eevil\u202c \u2028line\u2029 end",
)


@dataclass(frozen=True)
class Expected:
    """What the explorer must count, computed from the fixture's own plan."""

    n: int
    wrong: int
    succeeded: int
    flipped: int
    explained: int
    sex_f: int
    hostile_ids: tuple[str, ...]


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(example_line(r) + "\n" for r in rows), encoding="utf-8")
    return path.relative_to(path.parent.parent).as_posix()


def _suite(name: str, file: str | None, n: int) -> SuiteRecord:
    return SuiteRecord(name=name, version="1.0", params={}, status="ok", wall_time_s=1.0, examples_file=file, n_examples=n)


def make_big_run(root: Path, n: int = 10_000, seed: int = 0) -> tuple[Path, Expected]:
    rng = np.random.default_rng(seed)
    run = root / "big"
    ids = [f"ex{i:05d}" for i in range(n)]
    labels = rng.integers(0, 2, size=n)
    p_pos = np.clip(np.where(labels == 1, 0.7, 0.3) + rng.normal(0, 0.25, size=n), 0.001, 0.999)
    names = ["neg", "pos"]
    texts = [f"review {i} needle-{i:05d} " + " ".join(rng.choice(["good", "bad", "plot", "cast"], size=8)) for i in range(n)]
    hostile_ids = tuple(ids[7 + (n // 4) * k] for k in range(len(HOSTILE_TEXTS)))
    for k, ident in enumerate(hostile_ids):
        texts[int(ident[2:])] = HOSTILE_TEXTS[k]
    predictions = [
        {"id": ident, "label": names[int(labels[i])], "predicted": names[int(p_pos[i] > 0.5)],
         "probabilities": [float(1 - p_pos[i]), float(p_pos[i])]}
        for i, ident in enumerate(ids)
    ]
    predictions[3] = {"id": ids[3], "label": "pos", "predicted": None, "probabilities": None, "error": "model raised ValueError: x"}
    sex = ["F" if i % 3 else "M" for i in range(n)]
    data_rows = [{"id": ident, "text": texts[i], "slices": ["short" if len(texts[i]) < 60 else "long"]} for i, ident in enumerate(ids)]
    member_rows = [{"id": f"member:{ident}", "kind": "member", "example_id": ident, "groups": {"sex": sex[i]}} for i, ident in enumerate(ids)]
    attacked = rng.choice(n, size=300, replace=False)
    robust_rows = []
    for i in attacked:
        result = str(rng.choice(["succeeded", "failed", "skipped"]))
        robust_rows.append({"id": f"pwws:{ids[i]}", "example_id": ids[i], "recipe": "pwws", "result": result,
                            "original_text": texts[i], "perturbed_text": texts[i].upper() if result == "succeeded" else None})
    flipped = rng.choice(n, size=200, replace=False)
    invariance_rows = [{"id": f"typo:{ids[i]}", "example_id": ids[i], "perturbation": "typo", "flipped": True,
                        "original_text": texts[i], "perturbed_text": texts[i] + "x"} for i in flipped]
    explained = list(range(0, n, 200))
    explain_rows = []
    for i in explained:
        words = texts[i].split()
        explain_rows.append({"id": ids[i], "words": words, "attributions": {"ig": [float(v) for v in rng.normal(size=len(words))]}})
    files = {
        "data": _jsonl(run / "examples" / "data.jsonl", data_rows),
        "bias": _jsonl(run / "examples" / "bias.jsonl", member_rows),
        "robustness": _jsonl(run / "examples" / "robustness.jsonl", robust_rows),
        "invariance": _jsonl(run / "examples" / "invariance.jsonl", invariance_rows),
        "explain": _jsonl(run / "examples" / "explain.jsonl", explain_rows),
    }
    (run / "predictions.jsonl").write_text("".join(example_line(p) + "\n" for p in predictions), encoding="utf-8")
    counts = {"data": n, "bias": n, "robustness": 300, "invariance": 200, "explain": len(explained)}
    record = RunRecord(
        run_id="big-0001", status="complete", config={"name": "big"},
        provenance=Provenance(
            harness_version="0.1.0", git_commit=None, git_dirty=None, python="3.11", packages={}, os="Linux",
            cpu="cpu", gpu=None, device="cpu", torch_threads=1, seed=0, config_sha256="ab" * 32,
            started_utc="2025-01-01T00:00:00Z", finished_utc="2025-01-01T00:01:00Z", deterministic=True,
        ),
        model=ModelInfo(name="big model", source="path", location="/m", digest="cd" * 32, label_names=names, max_length=32),
        dataset=DatasetInfo(name="big", source="synthetic", eval_split="test", label_names=names,
                            splits=[SplitInfo(name="test", n=n, sha256="ef" * 32)], group_columns=["sex"]),
        suites=[_suite(name, files[name], counts[name]) for name in files],
    )
    (run / "record.json").write_text(dump_record(record), encoding="utf-8")
    write_manifest(run)
    answered = [p for p in predictions if p["predicted"] is not None]
    expected = Expected(
        n=n,
        wrong=sum(1 for p in answered if p["predicted"] != p["label"]),
        succeeded=sum(1 for r in robust_rows if r["result"] == "succeeded"),
        flipped=len(flipped),
        explained=len(explained),
        sex_f=sum(1 for s in sex if s == "F"),
        hostile_ids=hostile_ids,
    )
    return run, expected
