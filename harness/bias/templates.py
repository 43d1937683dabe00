"""Template sets: sentences with a ``{person}`` slot, filled with identity fillers.

Only the filler changes between the instances of a template, so any difference in the model's
score between fillers of one template is caused by the filler (the counterfactual design of the
Equity Evaluation Corpus, Kiritchenko & Mohammad 2018).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.records import Resource
from harness.store import sha256_file

SLOT = "{person}"
_BRACES = re.compile(r"\{[^{}]*\}")

MSG_TEMPLATE_NO_SLOT = "{where}: template {id!r} has no {slot} slot: {text!r}"
MSG_TEMPLATE_BAD_SLOT = (
    "{where}: template {id!r} has unknown slot(s) {slots}; the only slot is {slot}"
)
MSG_TEMPLATE_DUPLICATE = "{where}: template id {id!r} is used twice"

BUILTIN_FILE = Path(__file__).with_name("templates.yaml")


@dataclass(frozen=True)
class Template:
    id: str
    text: str
    polarity: str | None = None

    def fill(self, filler: str) -> str:
        """The sentence with every slot replaced; a filler opening the sentence is capitalised."""
        out = self.text.replace(SLOT, filler)
        if self.text.startswith(SLOT) and out:
            out = out[0].upper() + out[1:]
        return out


def validate_template(template: Template, where: str) -> None:
    slots = _BRACES.findall(template.text)
    unknown = sorted({s for s in slots if s != SLOT})
    if unknown:
        raise ConfigError(
            MSG_TEMPLATE_BAD_SLOT.format(where=where, id=template.id, slots=unknown, slot=SLOT)
        )
    if SLOT not in template.text:
        raise ConfigError(
            MSG_TEMPLATE_NO_SLOT.format(where=where, id=template.id, slot=SLOT, text=template.text)
        )


def parse_templates(raw: Any, *, where: str) -> list[Template]:
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("templates"), list)
        or not raw["templates"]
    ):
        raise ConfigError(
            f"{where}: a template file must be a mapping with a non-empty 'templates' list"
        )
    out: list[Template] = []
    seen: set[str] = set()
    for i, item in enumerate(raw["templates"]):
        if isinstance(item, str):  # a bare sentence: its position is its id
            item = {"id": f"t{i:03d}", "text": item}
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise ConfigError(f"{where}: templates[{i}] must be a string or a mapping with 'text'")
        tid = str(item.get("id", f"t{i:03d}"))
        if tid in seen:
            raise ConfigError(MSG_TEMPLATE_DUPLICATE.format(where=where, id=tid))
        seen.add(tid)
        polarity = item.get("polarity")
        template = Template(
            id=tid, text=item["text"], polarity=None if polarity is None else str(polarity)
        )
        validate_template(template, where)
        out.append(template)
    return out


def load_template_file(path: Path, *, key: str) -> tuple[list[Template], Resource]:
    import yaml

    where = f"{key}: {path}"
    if not path.is_file():
        raise ConfigError(f"{key}: template file {str(path)!r} not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({exc})") from None
    templates = parse_templates(raw, where=where)
    resource = Resource(
        name=str(raw.get("name", path.stem)),
        source=str(raw.get("source", str(path))),
        sha256=sha256_file(path),
        license=str(raw["license"]) if "license" in raw else None,
        note=str(raw["note"]) if "note" in raw else None,
    )
    return templates, resource


def builtin_templates() -> tuple[list[Template], Resource]:
    return load_template_file(BUILTIN_FILE, key="bias built-in templates")
