"""The one registry: suites, model adapters and artifact sources register where they are defined.

Entries are either objects registered by a decorator at their definition, or lazy
``"module:attr"`` targets resolved on first use. Discovery imports every module of a package
(``harness.suites`` for suites) once, so adding a suite is one new file; third-party plugins
register through the ``harness.plugins`` entry-point group. Unknown names fail with a
"did you mean" hint.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from harness.errors import MSG_DID_YOU_MEAN, MSG_UNKNOWN_NAME, ConfigError

T = TypeVar("T")


def did_you_mean(name: str, known: list[str]) -> str:
    """Return a ' (did you mean ...?)' hint for the closest known name, or ''."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return MSG_DID_YOU_MEAN.format(suggestion=close[0]) if close else ""


class Registry(Generic[T]):
    """A named collection of plugins of one kind."""

    def __init__(self, kind: str, *, discover: str | None = None) -> None:
        self.kind = kind
        self._discover_package = discover
        self._discovered = discover is None
        self._entries: dict[str, T | str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name``."""

        def decorate(obj: T) -> T:
            existing = self._entries.get(name)
            if existing is not None and existing is not obj and not isinstance(existing, str):
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return decorate

    def register_lazy(self, name: str, target: str) -> None:
        """Register a ``"module:attr"`` target, imported only when first looked up."""
        self._entries.setdefault(name, target)

    def _ensure_discovered(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        assert self._discover_package is not None
        package = importlib.import_module(self._discover_package)
        for info in pkgutil.iter_modules(getattr(package, "__path__", [])):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self._discover_package}.{info.name}")
        for ep in entry_points(group="harness.plugins"):
            ep.load()

    def names(self) -> list[str]:
        self._ensure_discovered()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._ensure_discovered()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        self._ensure_discovered()
        try:
            entry = self._entries[name]
        except KeyError:
            known = self.names()
            raise ConfigError(
                MSG_UNKNOWN_NAME.format(
                    kind=self.kind,
                    name=name,
                    hint=did_you_mean(name, known),
                    known=", ".join(known) or "(none)",
                )
            ) from None
        if isinstance(entry, str):
            module_name, _, attr = entry.partition(":")
            resolved: Any = getattr(importlib.import_module(module_name), attr)
            self._entries[name] = resolved
            return resolved  # type: ignore[no-any-return]
        return entry


# The registries. Suites are discovered from harness.suites; model adapters and artifacts
# register themselves in their modules.
suites: Registry[Any] = Registry("suite", discover="harness.suites")
artifacts: Registry[Any] = Registry("artifact", discover="harness.catalog")
datasets: Registry[Any] = Registry("dataset", discover="harness.catalog")
