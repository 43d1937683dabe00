"""Escaping-first HTML building, for the audit report and the leaderboard site alike.

Every string that reaches a document goes through ``esc`` unless it is ``Markup``, and
``Markup`` is only produced by the helpers here (``el``, ``empty``, ``join``, ``raw``). Record
fields, model names and example texts are plain ``str``, so they are always escaped
(``html.escape`` with ``quote=True``): a hostile model name renders as text, never as a tag or
an attribute. Float children and attributes are formatted by ``harness.render.numbers``, so the
same data always gives the same bytes.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from harness.render.numbers import fmt, fmt_svg


class Markup(str):
    """A string known to be safe HTML. Only this module's helpers create it."""

    __slots__ = ()


def esc(value: object) -> Markup:
    """Escape anything that is not already ``Markup`` (quotes included, for attributes)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def raw(trusted: str) -> Markup:
    """Mark a string written in this package (CSS, constant snippets) as safe. Never for data."""
    return Markup(trusted)


Child = Any  # str | Markup | number | None | Iterable of those


def _collect(children: Iterable[Child], out: list[str]) -> None:
    """Append each child escaped (``Markup`` as is, floats formatted, lists flattened)."""
    for child in children:
        if child is None or child is False:
            continue
        if isinstance(child, Markup):
            out.append(child)
        elif isinstance(child, str):
            out.append(html.escape(child, quote=True))
        elif isinstance(child, (list, tuple)):
            _collect(child, out)
        elif isinstance(child, float):
            out.append(html.escape(fmt(child), quote=True))
        else:
            out.append(html.escape(str(child), quote=True))


@cache
def _attr_name(key: str) -> str:
    # Python keywords and hyphens cannot be keyword arguments: cls -> class, font_size -> font-size.
    if key == "cls":
        return "class"
    return key.rstrip("_").replace("_", "-")


def attrs_html(attrs: Mapping[str, object]) -> str:
    """`` name="value"`` pairs in the given order; None/False leave the attribute out, True
    writes it bare, floats are coordinates (``fmt_svg``), everything is escaped."""
    parts = []
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        name = _attr_name(key)
        if value is True:
            parts.append(f" {name}")
        else:
            shown = fmt_svg(value) if isinstance(value, float) else value
            parts.append(f' {name}="{esc(shown)}"')
    return "".join(parts)


VOID = frozenset({"meta", "br", "hr", "img", "link", "col", "input"})


def el(tag: str, *children: Child, **attrs: object) -> Markup:
    """``<tag attrs>children</tag>`` with every attribute value and text child escaped."""
    opening = f"<{tag}{attrs_html(attrs)}>" if attrs else f"<{tag}>"
    if tag in VOID:
        return Markup(opening)
    parts = [opening]
    _collect(children, parts)
    parts.append(f"</{tag}>")
    return Markup("".join(parts))


def empty(tag: str, **attrs: object) -> Markup:
    """``<tag attrs/>``: a self-closed SVG element (the site's charts write lines this way)."""
    return Markup(f"<{tag}{attrs_html(attrs)}/>")


def join(items: Iterable[Child], sep: str = "") -> Markup:
    """The items (escaped unless ``Markup``) joined by ``sep`` (escaped too)."""
    parts: list[str] = []
    _collect(items, parts)
    return Markup(esc(sep).join(parts))
