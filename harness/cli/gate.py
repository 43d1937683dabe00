"""``harness gate``: does a candidate run regress against a baseline? Exit 0 pass, 1 regression,
2 error; ``--plan`` prints how many examples each rule needs instead.

Only typer is imported here; the gate and its statistics are imported when the command runs
(they never import torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from harness.cli.console import out
from harness.cli.handler import command
from harness.errors import HarnessError

MULTI_VALUE_OPTIONS = ("--baseline", "--candidate")

PolicyOption = Annotated[
    Path | None,
    typer.Option(
        "--policy",
        help="Policy YAML with the rules. Without it, one significant-regression rule per "
        "headline metric the baseline's suites declare (printed before the verdict).",
    ),
]
BaselineOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--baseline",
        help="Baseline run folder or record.json; several (replicate runs of different "
        "seeds) are tested with their seed-to-seed variance.",
    ),
]
CandidateOption = Annotated[
    list[Path] | None,
    typer.Option("--candidate", help="Candidate run folder(s) or record.json(s)."),
]
PlanOption = Annotated[
    bool,
    typer.Option(
        "--plan",
        help="Print how many examples each rule needs to detect its tolerance, then exit "
        "(no candidate needed; a baseline makes the estimate data-based).",
    ),
]
DiscordanceOption = Annotated[
    float | None,
    typer.Option(
        "--discordance",
        min=0.0,
        max=1.0,
        help="With --plan: share of examples whose outcome differs between the runs.",
    ),
]
AllowMismatchOption = Annotated[
    bool,
    typer.Option(
        "--allow-mismatch", help="Compare even if split, suite version or parameters differ."
    ),
]
JunitOption = Annotated[
    Path | None, typer.Option("--junit", help="Write JUnit XML (one test case per rule).")
]
MarkdownOption = Annotated[
    Path | None, typer.Option("--markdown", help="Write a markdown summary.")
]
JsonOption = Annotated[
    Path | None, typer.Option("--json", help="Write the verdict (or plan) as JSON.")
]


def expand_multi_values(args: list[str]) -> list[str]:
    """``--baseline A1 A2 --candidate B1 B2`` -> ``--baseline A1 --baseline A2 …`` (click
    options take one value each; replicate sets are written the short way)."""
    out: list[str] = []
    current: str | None = None
    for arg in args:
        if arg in MULTI_VALUE_OPTIONS:
            current = arg
            out.append(arg)
            continue
        if arg.startswith("-"):
            current = None
        elif current is not None and out and out[-1] != current:
            out.append(current)
        out.append(arg)
    return out


def gate(
    policy: PolicyOption = None,
    baseline: BaselineOption = None,
    candidate: CandidateOption = None,
    plan: PlanOption = False,
    discordance: DiscordanceOption = None,
    allow_mismatch: AllowMismatchOption = False,
    junit: JunitOption = None,
    markdown: MarkdownOption = None,
    json_out: JsonOption = None,
) -> None:
    """Decide whether CANDIDATE regresses against BASELINE. Exit 0 pass, 1 regression, 2 error.

    A rule that cannot tell (too few examples, or a test too weak for the tolerance) is
    inconclusive: exit 0 with a warning unless the policy says on_inconclusive: fail. The
    markdown summary is also appended to $GITHUB_STEP_SUMMARY when it is set.
    """
    rules = _policy(policy, baseline or [])
    if plan:
        _plan(rules, baseline or [], discordance, json_out)
        raise typer.Exit(0)
    if not baseline or not candidate:
        raise HarnessError("--baseline and --candidate are required (or --plan)")
    from harness.gate.evaluate import run_gate
    from harness.gate.outputs import print_table, write_outputs

    verdict = run_gate(baseline, candidate, rules, allow_mismatch=allow_mismatch)
    print_table(verdict, console=out)
    write_outputs(verdict, junit=junit, markdown_file=markdown, json_file=json_out)
    raise typer.Exit(verdict.exit_code)


def _policy(policy: Path | None, baseline: list[Path]) -> Any:
    """The policy file's rules, or without one the rules derived from the first baseline's
    declared headline metrics, said on stderr with every rule (``harness.gate.derived``)."""
    from harness.gate.policy import load_policy

    if policy is not None:
        return load_policy(policy)
    if not baseline:
        raise HarnessError("--policy or --baseline is required (rules are derived from a baseline)")
    from harness.cli.console import err
    from harness.gate.derived import MSG_DERIVED, derive_policy
    from harness.gate.inputs import load_run

    derived = derive_policy(load_run(baseline[0]).record)
    err.print(Text(f"{MSG_DERIVED}:"))
    for rule in derived.policy.rules:
        err.print(Text(f"  {rule.text}"))
    for note in derived.notes:
        err.print(Text(f"  note: {note}"))
    return derived.policy


def _plan(
    rules: Any, baseline: list[Path], discordance: float | None, json_out: Path | None
) -> None:
    from harness.gate.inputs import load_run
    from harness.gate.outputs import print_plan
    from harness.gate.plan import plan

    rows = plan(rules, [load_run(p) for p in baseline], discordance=discordance)
    print_plan(rows, console=out)
    if json_out is not None:
        from harness.records import canonical_json
        from harness.store import atomic_write_text

        atomic_write_text(json_out, canonical_json({"plan": [r.to_json() for r in rows]}))


def register(app: typer.Typer) -> None:
    command(app, gate)
