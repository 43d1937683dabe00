"""The one registry: suites, model kinds, model sources, artifacts and datasets register where
they are defined.

Entries are either objects registered by a decorator at their definition, or lazy
``"module:attr"`` targets resolved on first use. Discovery imports every module of a package
(``harness.suites`` for suites) once, so adding a suite is one new file; third-party plugins
register through the ``harness.plugins`` entry-point group (a plugin's module is imported and
registers itself with the same decorators). Unknown names fail with a "did you mean" hint.

A registry may be typed: ``base`` (a class, or a lazy ``"module:attr"`` naming one, so this core
module imports nothing above it) is checked for every entry, at registration for decorated
objects and on first lookup for lazy targets. A registry with ``name_attr`` takes an entry's
name from the object itself, so a suite class is registered with a bare ``@registry.suites.register``
and its ``name`` is written once::

    @registry.suites.register
    class MySuite(Suite[MyParams]):
        name = "mine"

Other kinds name the entry: ``@registry.model_sources.register("hub")``.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from harness.errors import MSG_DID_YOU_MEAN, MSG_UNKNOWN_NAME, ConfigError

if TYPE_CHECKING:  # annotations only: core never imports the suites at run time
    from harness.suites.base import Suite

T = TypeVar("T")

PLUGIN_GROUP = "harness.plugins"
# Message templates (asserted by tests/test_registry.py).
MSG_DUPLICATE = (
    "{kind} {name!r} is registered twice: by {first} and by {second}; give one of them another name"
)
MSG_NOT_BASE = "{kind} {name!r}: {obj} is not a {base} (a {kind} must subclass {base})"
MSG_NO_NAME = (
    "{kind}: {obj} has no {attr!r} string to register under; set it or pass a name to register()"
)
MSG_BAD_TARGET = "{kind} {name!r}: lazy target {target!r} must be 'module:attr'"


def did_you_mean(name: str, known: list[str]) -> str:
    """Return a ' (did you mean ...?)' hint for the closest known name, or ''."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return MSG_DID_YOU_MEAN.format(suggestion=close[0]) if close else ""


def _import_target(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _describe(obj: object) -> str:
    """``module.QualName`` of a class or function, else its repr (for error messages)."""
    qualname = getattr(obj, "__qualname__", None)
    module = getattr(obj, "__module__", None)
    return f"{module}.{qualname}" if isinstance(qualname, str) and module else repr(obj)


class Registry(Generic[T]):
    """A named collection of plugins of one kind.

    ``discover``: a package (or module) imported, with each of its public submodules, before
    the first lookup, after which the ``harness.plugins`` entry points are loaded.
    ``base``: every entry must be a subclass (for classes) or an instance of it.
    ``name_attr``: the attribute an entry's name is read from when ``register`` gets none.
    """

    def __init__(
        self,
        kind: str,
        *,
        discover: str | None = None,
        base: type | str | None = None,
        name_attr: str | None = None,
    ) -> None:
        self.kind = kind
        self._discover_package = discover
        self._discovered = discover is None
        self._base = base
        self._name_attr = name_attr
        self._entries: dict[str, T | str] = {}

    # ------------------------------------------------------------------ registering

    @overload
    def register(self, name: str | None = None, /) -> Callable[[T], T]: ...

    @overload
    def register(self, name: T, /) -> T: ...

    def register(self, name: Any = None, /) -> Any:
        """Decorator: register the decorated object under ``name`` (or its ``name_attr``).

        Used bare (``@reg.register``) or called (``@reg.register()``, ``@reg.register("x")``).
        """
        if name is None or isinstance(name, str):
            return lambda obj: self._add(name, obj)
        return self._add(None, name)

    def _add(self, name: str | None, obj: T) -> T:
        key = name if name is not None else self._name_of(obj)
        self._check_base(key, obj)
        existing = self._entries.get(key)
        if existing is not None and existing is not obj and not isinstance(existing, str):
            raise ConfigError(
                MSG_DUPLICATE.format(
                    kind=self.kind, name=key, first=_describe(existing), second=_describe(obj)
                )
            )
        self._entries[key] = obj
        return obj

    def _name_of(self, obj: object) -> str:
        value = getattr(obj, self._name_attr, None) if self._name_attr else None
        if not isinstance(value, str) or not value:
            raise ConfigError(
                MSG_NO_NAME.format(
                    kind=self.kind, obj=_describe(obj), attr=self._name_attr or "name"
                )
            )
        return value

    def _check_base(self, name: str, obj: object) -> None:
        if self._base is None:
            return
        base = _import_target(self._base) if isinstance(self._base, str) else self._base
        ok = issubclass(obj, base) if isinstance(obj, type) else isinstance(obj, base)
        if not ok:
            raise ConfigError(
                MSG_NOT_BASE.format(
                    kind=self.kind, name=name, obj=_describe(obj), base=_describe(base)
                )
            )

    def register_lazy(self, name: str, target: str) -> None:
        """Register a ``"module:attr"`` target, imported only when first looked up."""
        if ":" not in target:
            raise ConfigError(MSG_BAD_TARGET.format(kind=self.kind, name=name, target=target))
        self._entries.setdefault(name, target)

    # ------------------------------------------------------------------ looking up

    def _ensure_discovered(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        assert self._discover_package is not None
        package = importlib.import_module(self._discover_package)
        for info in pkgutil.iter_modules(getattr(package, "__path__", [])):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self._discover_package}.{info.name}")
        for ep in entry_points(group=PLUGIN_GROUP):
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
            resolved: T = _import_target(entry)
            self._check_base(name, resolved)
            self._entries[name] = resolved
            return resolved
        return entry


# The registries. Suites are discovered from harness.suites and named by their class's `name`;
# model kinds in harness/models/kinds/ (one module each), fine-tune methods in
# harness/models/finetune/methods.py, model sources in the modules of harness.models (in
# harness/models/sources.py, e.g. ``@registry.model_sources.register("hub")``); artifacts and
# datasets in the catalog. Every registry with a discover package also loads the plugins.
suites: Registry[type[Suite[Any]]] = Registry(
    "suite", discover="harness.suites", base="harness.suites.base:Suite", name_attr="name"
)
model_kinds: Registry[Any] = Registry(
    "model kind", discover="harness.models.kinds",
    base="harness.models.kinds.base:ModelKind", name_attr="name",
)
finetune_methods: Registry[Any] = Registry(
    "fine-tune method", discover="harness.models.finetune.methods"
)
model_sources: Registry[Any] = Registry("model source", discover="harness.models")
# Attack engines for adversarial fine-tuning (harness/robust/augment.py): models/ sits below robust/,
# so the fine-tuning stage reaches its attacks through this registry.
adversarial_augmenters: Registry[Any] = Registry("adversarial augmenter", discover="harness.robust.augment")
artifacts: Registry[Any] = Registry("artifact", discover="harness.catalog")
datasets: Registry[Any] = Registry("dataset", discover="harness.catalog")
