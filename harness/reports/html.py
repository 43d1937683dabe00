"""Escaping-first HTML building for the audit report.

Every string that reaches the document goes through ``esc`` unless it is ``Markup``, and
``Markup`` is only produced by the helpers here (``el``, ``join``, ``raw``). Record fields, model
names and example texts are plain ``str``, so they are always escaped (``html.escape`` with
``quote=True``): a hostile model name renders as text, never as a tag or an attribute.
Numbers are formatted by one function so the same record always gives the same bytes.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard


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


def _children(children: Iterable[Child]) -> Iterable[Markup]:
    for child in children:
        if child is None or child is False:
            continue
        if isinstance(child, str):
            yield esc(child)
        elif isinstance(child, (list, tuple)):
            yield from _children(child)
        elif isinstance(child, float):
            yield esc(fmt(child))
        else:
            yield esc(child)


def _attr_name(key: str) -> str:
    # Python keywords and hyphens cannot be keyword arguments: cls -> class, font_size -> font-size.
    if key == "cls":
        return "class"
    return key.rstrip("_").replace("_", "-")


def attrs_html(attrs: Mapping[str, object]) -> str:
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
    opening = f"<{tag}{attrs_html(attrs)}>"
    if tag in VOID:
        return Markup(opening)
    return Markup(opening + "".join(_children(children)) + f"</{tag}>")


def join(items: Iterable[Child], sep: str = "") -> Markup:
    return Markup(esc(sep).join(_children(items)))


# ------------------------------------------------------------------ numbers


def fmt(value: object, digits: int = 4) -> str:
    """A human number: integers as integers, others with ``digits`` significant figures."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "—"
        if value == int(value) and abs(value) < 1e12:
            return str(int(value))
        if abs(value) >= 1000:
            return f"{value:.1f}"
        return f"{value:.{digits}g}"
    return str(value)


def fmt_svg(value: float) -> str:
    """Coordinates with two decimals and no negative zero: stable bytes across platforms."""
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


def fmt_ci(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "—"
    return f"[{fmt(low)}, {fmt(high)}]"


def is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
