"""Developer sessions. CI runs `make test` (the README's command); these mirror its parts."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
CONSTRAINTS = ("-c", "constraints/cpu.txt")


def install(session: nox.Session) -> None:
    session.install(*CONSTRAINTS, "-e", ".[dev]")


@nox.session
def tests(session: nox.Session) -> None:
    """The full test suite (browser tests need Debian's chromium: scripts/install-browser.sh)."""
    install(session)
    session.run("pytest", "-n", "2", "-q", *session.posargs, env={"HF_HUB_OFFLINE": "1"})


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "harness", "tests", "benchmarks", "noxfile.py")
    session.run("bash", "scripts/lint-unsafe.sh", external=True)
    # import-linter reads the source tree; the package need not be installed (no torch here).
    session.install("import-linter>=2.1")
    session.run("lint-imports", "--no-cache", env={"PYTHONPATH": "."})


@nox.session
def typecheck(session: nox.Session) -> None:
    install(session)
    session.run("mypy", "harness")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: fine-tune minilm-l6 on rotten-tomatoes and run every suite."""
    install(session)
    session.run("harness", "run", "suites/default.yaml")


@nox.session
def bench(session: nox.Session) -> None:
    """pytest-benchmark suites under benchmarks/ (not run by default)."""
    install(session)
    session.run("pytest", "benchmarks", "--benchmark-only", "-p", "no:xdist", *session.posargs)


@nox.session
def golden(session: nox.Session) -> None:
    """Regenerate the committed JSON Schema and golden JSON files."""
    install(session)
    session.run("harness", "schema", "-o", "harness/schema/record.schema.json")
    session.run("python", "-m", "tests.golden", "--regenerate")
