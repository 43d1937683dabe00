"""The registry: names from the class, typed entries, duplicates, lazy targets, plugins."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from harness import registry
from harness.errors import ConfigError
from harness.registry import (
    MSG_BAD_TARGET,
    MSG_DUPLICATE,
    MSG_NO_NAME,
    MSG_NOT_BASE,
    Registry,
)
from harness.suites.base import Suite, SuiteContext, SuiteOutcome, SuiteParams


class Base:
    name = "base"


def fresh() -> Registry[type[Base]]:
    return Registry("widget", base=Base, name_attr="name")


def test_bare_decorator_takes_the_name_from_the_class() -> None:
    reg = fresh()

    @reg.register
    class One(Base):
        name = "one"

    @reg.register()
    class Two(Base):
        name = "two"

    @reg.register("three")
    class Three(Base):
        name = "ignored-when-a-name-is-given"

    assert reg.names() == ["one", "three", "two"]
    assert reg.get("one") is One and reg.get("two") is Two and reg.get("three") is Three


def test_entries_must_subclass_the_base() -> None:
    reg = fresh()

    class Stranger:
        name = "stranger"

    with pytest.raises(ConfigError) as err:
        reg.register(Stranger)
    assert err.value.message == MSG_NOT_BASE.format(
        kind="widget",
        name="stranger",
        obj=f"{__name__}.{Stranger.__qualname__}",
        base=f"{__name__}.Base",
    )


def test_a_lazy_base_is_resolved_when_checked() -> None:
    reg: Registry[Any] = Registry("suite", base="harness.suites.base:Suite", name_attr="name")
    with pytest.raises(ConfigError, match=r"is not a harness\.suites\.base\.Suite"):
        reg.register(Base)


def test_a_missing_name_is_refused() -> None:
    reg: Registry[Any] = Registry("widget", name_attr="name")

    class Nameless:
        pass

    with pytest.raises(ConfigError) as err:
        reg.register(Nameless)
    assert err.value.message == MSG_NO_NAME.format(
        kind="widget", obj=f"{__name__}.{Nameless.__qualname__}", attr="name"
    )


def test_duplicates_name_both_registrations() -> None:
    reg = fresh()

    @reg.register
    class First(Base):
        name = "same"

    reg.register(First)  # the same object again (a module imported twice) is fine

    class Second(Base):
        name = "same"

    with pytest.raises(ConfigError) as err:
        reg.register(Second)
    assert err.value.message == MSG_DUPLICATE.format(
        kind="widget",
        name="same",
        first=f"{__name__}.{First.__qualname__}",
        second=f"{__name__}.{Second.__qualname__}",
    )


def test_unknown_names_suggest_the_closest() -> None:
    reg = fresh()

    @reg.register
    class Accuracy(Base):
        name = "accuracy"

    with pytest.raises(
        ConfigError, match=r"unknown widget 'acuracy' \(did you mean 'accuracy'\?\)"
    ):
        reg.get("acuracy")


def test_lazy_targets_resolve_once_and_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("harness_test_lazy_widgets")

    class Lazy(Base):
        name = "lazy"

    module.Lazy = Lazy  # type: ignore[attr-defined]
    module.NotAWidget = object  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    reg = fresh()
    reg.register_lazy("lazy", f"{module.__name__}:Lazy")
    reg.register_lazy("bad", f"{module.__name__}:NotAWidget")
    assert reg.names() == ["bad", "lazy"]
    assert reg.get("lazy") is Lazy and reg.get("lazy") is Lazy
    with pytest.raises(ConfigError, match="is not a"):
        reg.get("bad")
    with pytest.raises(ConfigError) as err:
        reg.register_lazy("x", "no-colon")
    assert err.value.message == MSG_BAD_TARGET.format(kind="widget", name="x", target="no-colon")


def test_entry_point_plugins_register_on_discovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module named in the harness.plugins group is imported on the first lookup and
    registers itself; here into a registry discovered from an empty package."""
    (tmp_path / "harness_test_empty_pkg").mkdir()
    (tmp_path / "harness_test_empty_pkg" / "__init__.py").write_text("")
    (tmp_path / "harness_test_plugin_mod.py").write_text(
        "from tests.test_registry import DISCOVERED\nDISCOVERED.register('from-plugin')(object())\n"
    )
    info = tmp_path / "harness_test_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: harness-test-plugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text("[harness.plugins]\ntest = harness_test_plugin_mod\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert DISCOVERED.names() == ["from-plugin"]


DISCOVERED: Registry[Any] = Registry("thing", discover="harness_test_empty_pkg")


class _Params(SuiteParams):
    k: int = 1


def test_the_suite_registry_is_typed_and_named_by_class() -> None:
    assert {"accuracy", "bias", "explain", "invariance", "latency", "robustness"} <= set(
        registry.suites.names()
    )
    for name in registry.suites.names():
        cls = registry.suites.get(name)
        assert issubclass(cls, Suite) and cls.name == name

    class NotASuite:
        name = "not-a-suite"

    with pytest.raises(ConfigError, match=r"must subclass harness\.suites\.base\.Suite"):
        registry.suites.register(NotASuite)  # type: ignore[call-overload]
    assert "not-a-suite" not in registry.suites

    class Typed(Suite[_Params]):
        name, version, Params = "typed-demo", "0", _Params

        def run(self, model: Any, data: Any, ctx: SuiteContext) -> SuiteOutcome:
            return SuiteOutcome(metrics=[])

    suite = Typed(params=_Params(k=3))
    assert suite.params.k == 3  # typed as _Params: no cast, no isinstance


def test_model_registries_exist_for_kinds_and_sources() -> None:
    assert registry.model_kinds.kind == "model kind"
    assert registry.model_sources.kind == "model source"


def test_params_follow_the_generic_argument() -> None:
    class Inferred(Suite[_Params]):
        name, version = "inferred-demo", "0"

        def run(self, model: Any, data: Any, ctx: SuiteContext) -> SuiteOutcome:
            return SuiteOutcome(metrics=[])

    assert Inferred.Params is _Params

    class Other(SuiteParams):
        pass

    with pytest.raises(TypeError, match=r"Params is Other but the class is Suite\[_Params\]"):

        class Mismatched(Suite[_Params]):
            name, version, Params = "mismatched-demo", "0", Other

            def run(self, model: Any, data: Any, ctx: SuiteContext) -> SuiteOutcome:
                return SuiteOutcome(metrics=[])
