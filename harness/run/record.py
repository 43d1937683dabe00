"""Building a run's record from the one object that describes the run so far (``RunState``).

The record is rewritten (atomically) after every suite, status 'incomplete', so an interrupted
run can always be checked and resumed; it is 'complete' only when every suite ended 'ok'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from harness import __version__
from harness.config import RunConfig
from harness.data import Dataset
from harness.provenance import (
    cpu_name,
    git_state,
    gpu_name,
    os_name,
    package_versions,
    python_version,
)
from harness.records import (
    RECORD_FILE,
    DatasetInfo,
    Provenance,
    RunRecord,
    SplitInfo,
    SuiteRecord,
    SweepJob,
    dump_record,
)
from harness.run.folder import RunFolder
from harness.run.inputs import RunInputs
from harness.store import atomic_write_text

RunStatus = Literal["complete", "incomplete", "failed"]


@dataclass
class RunState:
    """Everything the record says, as the pipeline goes: the run's config, folder and inputs,
    and the suites finished so far."""

    config: RunConfig
    folder: RunFolder
    inputs: RunInputs
    n_truncated: int | None  # evaluation texts longer than max_length (None: not a tokenizer model)
    suites: list[SuiteRecord] = field(default_factory=list)
    status: RunStatus = "incomplete"
    finished_utc: str | None = None
    sweep: SweepJob | None = None  # the sweep this run is a job of


def count_truncated(inputs: RunInputs) -> int | None:
    tokenize = getattr(inputs.model, "tokenize", None)
    if tokenize is None:
        return None
    return int(sum(tokenize(inputs.eval_data.texts)[1]))


def build_record(run: RunState) -> RunRecord:
    import torch

    config, digest, model = run.config, run.folder.digest, run.inputs.model
    commit, dirty = git_state()
    device = model.device
    return RunRecord(
        run_id=f"{config.name}-{digest[:12]}",
        status=run.status,
        config=config.model_dump(mode="json"),
        provenance=Provenance(
            harness_version=__version__, git_commit=commit, git_dirty=dirty, python=python_version(),
            packages=package_versions(), os=os_name(), cpu=cpu_name(), gpu=gpu_name(), device=device,
            torch_threads=torch.get_num_threads(), seed=config.seed, config_sha256=digest,
            started_utc=run.folder.started_utc, finished_utc=run.finished_utc,
            deterministic=device == "cpu",
        ),
        model=model.info(),
        dataset=dataset_info(config, run.inputs, run.n_truncated),
        suites=list(run.suites),
        sweep=run.sweep,
    )  # fmt: skip


def dataset_info(config: RunConfig, inputs: RunInputs, n_truncated: int | None) -> DatasetInfo:
    bundle, eval_data = inputs.bundle, inputs.eval_data
    splits = [SplitInfo(name=k, n=len(v), sha256=v.digest()) for k, v in bundle.splits.items()]
    if config.dataset.max_examples:
        splits.append(_sample_info(config.dataset.eval_split, eval_data))
    return DatasetInfo(
        name=bundle.name, source=bundle.source, eval_split=config.dataset.eval_split,
        label_names=list(bundle.label_names), splits=splits,
        group_columns=sorted(eval_data.groups), n_truncated=n_truncated, revision=bundle.revision,
        label_map=config.dataset.label_map, extra_eval=[s.info() for s in inputs.eval_sets.values()],
    )  # fmt: skip


def _sample_info(split: str, sample: Dataset) -> SplitInfo:
    return SplitInfo(name=f"{split}@sample", n=len(sample), sha256=sample.digest())


def write_record(run: RunState) -> RunRecord:
    """Write the record as it stands now (atomically) and return it."""
    record = build_record(run)
    atomic_write_text(run.folder.path / RECORD_FILE, dump_record(record))
    return record
