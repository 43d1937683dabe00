"""``harness list [artifacts|suites|all] [NAME] [--json]``: the registered artifacts and suites,
with each suite's parameters and whether it can run here; ``harness list suites NAME`` shows one
suite in full: what it measures, its headline metric, and every parameter with its type, default
and meaning, read from the suite's own ``Params`` model (so a new suite needs no edit here).
"""

from __future__ import annotations

import inspect
import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from harness.cli.console import out
from harness.cli.handler import command
from harness.errors import HarnessError

TOPICS = ("all", "artifacts", "suites")
MSG_UNKNOWN_TOPIC = "list: unknown topic {what!r}; use artifacts, suites or all"
MSG_NAME_NEEDS_SUITES = "list: a NAME is only taken after 'suites' (got 'list {what} {name}')"


def list_(
    what: Annotated[str, typer.Argument(help="artifacts, suites or all")] = "all",
    name: Annotated[
        str | None, typer.Argument(help="With 'suites': one suite, shown in full.")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """List artifacts, suites and their parameters; `list suites NAME` shows one suite."""
    if what not in TOPICS:
        raise HarnessError(MSG_UNKNOWN_TOPIC.format(what=what))
    if name is not None and what != "suites":
        raise HarnessError(MSG_NAME_NEEDS_SUITES.format(what=what, name=name))
    if name is not None:
        info = suite_info(name)
        _emit(info, json_, lambda: print_suite(info))
        return
    data: dict[str, Any] = {}
    if what in ("all", "artifacts"):
        data["artifacts"] = artifact_infos()
    if what in ("all", "suites"):
        data["suites"] = [suite_info(n) for n in _suite_names()]
    _emit(data, json_, lambda: _print_tables(data))


def _emit(data: Any, as_json: bool, print_tables: Any) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    else:
        print_tables()


def _suite_names() -> list[str]:
    from harness import registry

    return registry.suites.names()


def artifact_infos() -> list[dict[str, Any]]:
    from harness import registry

    infos = []
    for artifact_name in registry.artifacts.names():
        a = registry.artifacts.get(artifact_name)
        infos.append(
            {
                "name": a.name,
                "kind": a.kind,
                "source": a.source.describe(),
                "sha256": a.sha256,
                "license": a.license,
                "description": a.description,
            }
        )
    return infos


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):  # a nested parameter model: its fields, not its repr
        return value.model_dump(mode="json")
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _type_name(annotation: Any) -> str:
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    return text.replace("typing.", "").replace("NoneType", "None")


def param_infos(params_model: Any) -> list[dict[str, Any]]:
    """One entry per field of a suite's ``Params`` model: type, default, description."""
    infos = []
    for field_name, f in params_model.model_fields.items():
        required = f.is_required()
        default = None if required else f.get_default(call_default_factory=True)
        infos.append(
            {
                "name": field_name,
                "type": _type_name(f.annotation),
                "required": required,
                "default": _jsonable(default),
                "description": f.description or "",
            }
        )
    return infos


def _measures(cls: Any) -> str:
    """What the suite measures: its one-line description, then its own docstring, else its
    module's (the built-in suites document themselves at module level)."""
    own = cls.__dict__.get("__doc__")
    module = sys.modules.get(cls.__module__)
    doc = inspect.cleandoc(own) if own else (inspect.getdoc(module) if module else None)
    parts = [p for p in (getattr(cls, "description", ""), doc or "") if p]
    return "\n\n".join(parts)


def suite_info(name: str) -> dict[str, Any]:
    """Everything ``list suites NAME`` shows, as plain data (the same for tables and JSON)."""
    from harness import registry

    cls = registry.suites.get(name)  # unknown names: a ConfigError with did-you-mean
    reason = cls.unavailable_reason()
    caps = cls.capabilities
    return {
        "name": name,
        "version": cls.version,
        "measures": _measures(cls),
        "headline": caps.headline,
        "capabilities": caps.model_dump(mode="json"),
        "status": "ok" if reason is None else f"unavailable: {reason}",
        "components": {
            k: "ok" if v is None else f"unavailable: {v}" for k, v in cls.component_status().items()
        },
        "parameters": param_infos(cls.Params),
    }


def _print_tables(data: dict[str, Any]) -> None:
    if "artifacts" in data:
        out.print(artifact_table(data["artifacts"]))
    if "suites" in data:
        out.print(suite_table(data["suites"]))


def artifact_table(infos: list[dict[str, Any]]) -> Table:
    """One row per pinned artifact: kind, source, digest, description."""
    table = Table(title="artifacts")
    for column in ("name", "kind", "source", "sha256", "description"):
        table.add_column(column)
    for a in infos:
        row = (a["name"], a["kind"], a["source"], a["sha256"][:12], a["description"])
        table.add_row(*(Text(str(c)) for c in row))
    return table


def _default_text(p: dict[str, Any]) -> str:
    return "(required)" if p["required"] else json.dumps(p["default"])


def suite_table(infos: list[dict[str, Any]]) -> Table:
    """One row per suite (version, parameter defaults, availability), one per optional part."""
    table = Table(title="suites")
    for column in ("suite", "version", "parameters", "status"):
        table.add_column(column)
    for info in infos:
        params = ", ".join(f"{p['name']}={_default_text(p)}" for p in info["parameters"])
        table.add_row(*(Text(c) for c in (info["name"], info["version"], params, info["status"])))
        for extra_name, status in info["components"].items():
            table.add_row(Text(f"  {info['name']}/{extra_name}"), "", "", Text(status))
    return table


def print_suite(info: dict[str, Any]) -> None:
    """One suite in full: head, what it measures, then a table of its parameters."""
    out.print(Text(f"{info['name']} {info['version']} — {info['status']}", style="bold"))
    out.print(Text(info["measures"] or "(no description)"))
    out.print(Text(f"headline metric: {info['headline'] or '(none declared)'}"))
    for extra_name, status in info["components"].items():
        out.print(Text(f"component {extra_name}: {status}"))
    table = Table(title=f"parameters of {info['name']} (set under suites: - name: ... params:)")
    for column in ("parameter", "type", "default", "meaning"):
        table.add_column(column)
    for p in info["parameters"]:
        table.add_row(
            *(Text(c) for c in (p["name"], p["type"], _default_text(p), p["description"]))
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    command(app, list_, "list")
