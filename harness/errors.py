"""User-facing errors and the exit codes the CLI maps them to.

Every failure a person can act on is a ``HarnessError`` with a message that names the file,
row, column or config key. Message templates live here as constants so tests can assert them.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented process exit codes (README, "Exit codes")."""

    OK = 0
    REGRESSION = 1  # gate: a rule failed; verify: tampering found
    USAGE = 2  # bad command line, config, data or record
    ARTIFACT = 3  # an artifact could not be fetched or failed its checksum
    MODEL = 4  # a model could not be loaded or was refused as unsafe
    SUITE = 5  # a suite failed while running
    INTERRUPTED = 130


class HarnessError(Exception):
    """An error with a message meant for a person, and the exit code to leave with."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(HarnessError):
    exit_code = ExitCode.USAGE


class DataError(HarnessError):
    exit_code = ExitCode.USAGE


class ArtifactError(HarnessError):
    exit_code = ExitCode.ARTIFACT


class ModelError(HarnessError):
    exit_code = ExitCode.MODEL


class SuiteError(HarnessError):
    exit_code = ExitCode.SUITE


class RecordError(HarnessError):
    exit_code = ExitCode.USAGE


# Message templates (asserted by tests).
MSG_UNKNOWN_NAME = "unknown {kind} {name!r}{hint}; known: {known}"
MSG_DID_YOU_MEAN = " (did you mean {suggestion!r}?)"
MSG_MISSING_COLUMN = "{path}: missing column {column!r} (columns present: {present})"
MSG_EMPTY_TEXT = "{path}: row {row}: column {column!r} is empty or whitespace-only"
MSG_MISSING_LABEL = "{path}: row {row}: column {column!r} has no label"
MSG_UNKNOWN_LABEL = "{path}: row {row}: label {label!r} is not in the declared label set {labels}"
MSG_DUPLICATE_ID = "{path}: row {row}: duplicate id {id!r} (first seen at row {first})"
MSG_UNDECODABLE = "{path}: row {row}: byte {offset}: not valid UTF-8 ({reason})"
MSG_EMPTY_DATASET = "{path}: the dataset has no rows"
MSG_CHECKSUM = "artifact {name!r}: sha256 mismatch for {what}: expected {expected}, got {actual}"
MSG_PICKLE_REFUSED = (
    "{path}: refusing pickle-based weights ({files}); convert them to safetensors or set "
    "'model.allow_pickle: true' in the run file if you trust their source"
)
MSG_REMOTE_CODE_REFUSED = (
    "{path}: the model config asks for custom code (auto_map); set 'model.trust_remote_code: true' "
    "and pin 'model.revision' in the run file if you trust it"
)
