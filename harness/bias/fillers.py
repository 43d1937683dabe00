"""Identity fillers: noun phrases naming a person of a group, sorted into categories.

A category (e.g. ``religion``) holds groups (``muslim``, ``jewish`` …), each with a few filler
phrases that fit the ``{person}`` slot of a template ("a Muslim person", "my Muslim friend").
Within a category a phrase may belong to one group only: a phrase in two groups would make the
two groups' scores share instances, so the comparison would be wrong, not just weak. Every
category carries the ``Resource`` it came from (file, digest, source, license) for the record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.records import Resource
from harness.store import sha256_file

MSG_FILLER_DUPLICATE = (
    "{where}: filler {text!r} is listed in group {first!r} and in group {second!r} of category "
    "{category!r}; a filler may belong to one group only"
)
MSG_FILLER_EMPTY = "{where}: category {category!r} group {group!r} has no fillers"
MSG_FILLER_FORMAT = "{where}: {problem}"

BUILTIN_FILE = Path(__file__).with_name("identity_terms.yaml")


@dataclass(frozen=True)
class FillerCategory:
    """One axis of comparison: groups of filler phrases, with provenance."""

    name: str
    description: str
    groups: Mapping[str, tuple[str, ...]]
    resource: Resource
    # Optional attributes per group (e.g. {"gender": "female", "race": "black"} for names), so the
    # suite can also compare marginal groups with Fairlearn on several sensitive features.
    attributes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def fillers(self) -> list[tuple[str, str]]:
        """(group, phrase) pairs in a stable order."""
        return [(g, text) for g in self.groups for text in self.groups[g]]


def normalise_filler(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def validate_category(category: FillerCategory, where: str) -> None:
    """Refuse empty groups and phrases listed twice (in one group or across groups)."""
    seen: dict[str, str] = {}
    for group, phrases in category.groups.items():
        if not phrases:
            raise ConfigError(
                MSG_FILLER_EMPTY.format(where=where, category=category.name, group=group)
            )
        for phrase in phrases:
            key = normalise_filler(phrase)
            if not key:
                raise ConfigError(
                    MSG_FILLER_FORMAT.format(
                        where=where,
                        problem=f"category {category.name!r} group {group!r} has an empty filler",
                    )
                )
            if key in seen:
                raise ConfigError(
                    MSG_FILLER_DUPLICATE.format(
                        where=where,
                        text=phrase,
                        first=seen[key],
                        second=group,
                        category=category.name,
                    )
                )
            seen[key] = group


def _require(cond: bool, where: str, problem: str) -> None:
    if not cond:
        raise ConfigError(MSG_FILLER_FORMAT.format(where=where, problem=problem))


def parse_filler_data(raw: Any, *, where: str, resource: Resource) -> list[FillerCategory]:
    """Build categories from the YAML structure documented in ``identity_terms.yaml``."""
    _require(
        isinstance(raw, dict), where, "a filler file must be a mapping with a 'categories' key"
    )
    cats = raw.get("categories")
    _require(
        isinstance(cats, dict) and bool(cats), where, "'categories' must be a non-empty mapping"
    )
    out: list[FillerCategory] = []
    for name, body in cats.items():
        _require(
            isinstance(body, dict), where, f"category {name!r} must be a mapping with 'groups'"
        )
        groups = body.get("groups")
        _require(
            isinstance(groups, dict) and bool(groups),
            where,
            f"category {name!r}: 'groups' must be a non-empty mapping",
        )
        parsed: dict[str, tuple[str, ...]] = {}
        for group, phrases in groups.items():
            _require(
                isinstance(phrases, list) and all(isinstance(p, str) for p in phrases),
                where,
                f"category {name!r} group {group!r}: give a list of strings",
            )
            parsed[str(group)] = tuple(phrases)
        res = resource
        if "source" in body or "license" in body:
            res = resource.model_copy(
                update={
                    "source": str(body.get("source", resource.source)),
                    "license": str(body.get("license", resource.license)),
                }
            )
        category = FillerCategory(
            name=str(name),
            description=str(body.get("description", "")),
            groups=parsed,
            resource=res.model_copy(update={"name": f"{resource.name}#{name}"}),
        )
        validate_category(category, where)
        out.append(category)
    return out


def load_filler_file(path: Path, *, key: str) -> list[FillerCategory]:
    """Load a filler YAML file; ``key`` is the config path named in errors."""
    import yaml

    where = f"{key}: {path}"
    if not path.is_file():
        raise ConfigError(f"{key}: filler file {str(path)!r} not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({exc})") from None
    top = raw if isinstance(raw, dict) else {}
    resource = Resource(
        name=str(top.get("name", path.stem)),
        source=str(top.get("source", str(path))),
        sha256=sha256_file(path),
        license=str(top["license"]) if "license" in top else None,
        note=str(top["note"]) if "note" in top else None,
    )
    return parse_filler_data(raw, where=where, resource=resource)


def builtin_categories() -> list[FillerCategory]:
    return load_filler_file(BUILTIN_FILE, key="bias built-in identity terms")


def select_categories(
    categories: Sequence[FillerCategory], wanted: Sequence[str] | None, *, key: str
) -> list[FillerCategory]:
    """Keep the named categories (all when ``wanted`` is None); unknown names are an error."""
    names = [c.name for c in categories]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError(
            f"{key}: category {dup!r} is defined twice (built-in and user lists share names?)"
        )
    if wanted is None:
        return list(categories)
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise ConfigError(f"{key}: unknown filler categories {unknown} (known: {', '.join(names)})")
    return [c for c in categories if c.name in wanted]
