"""What registration refuses, each with a message that names the problem and the fix: a
built-in's name taken by an installed package, a name two packages both take, a config field
without an annotation, a config without @dataclass, a class outside its kind's interface."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sparseland import PluginConfig, build, registry
from sparseland.cli_plugins import describe
from sparseland.errors import DuplicatePluginError
from sparseland.interfaces import Pursuit, PursuitConfig, Task
from sparseland.plugins.pursuit.omp import Omp


def _fake_distribution(root: Path, dist: str, package: str, plugin_name: str) -> None:
    """An installed distribution ``dist`` whose entry point names ``package``, one module of
    which registers the pursuit ``plugin_name``."""
    pkg = root / package
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "solver.py").write_text(
        textwrap.dedent(f"""
        from dataclasses import dataclass
        from sparseland import register_pursuit
        from sparseland.plugins.pursuit.ista import Ista, IstaConfig

        @dataclass
        class MyConfig(IstaConfig):
            pass

        @register_pursuit("{plugin_name}", config=MyConfig)
        class Mine(Ista):
            pass
    """)
    )
    info = root / f"{package}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[sparseland.plugins]\n{package} = {package}\n")


@pytest.fixture
def fresh_discovery(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Discovery runs again over the installed packages plus those written into the folder."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry._STATE, "loaded", False)
    monkeypatch.setattr(registry._STATE, "broken", {})
    monkeypatch.setattr(registry._STATE, "packages", None)
    monkeypatch.setattr(registry._STATE, "clashes", {})
    before = {k: dict(v) for k, v in registry._STATE.entries.items()}
    yield tmp_path
    for kind, table in registry._STATE.entries.items():
        for name in [n for n, e in table.items() if e.module.startswith("thirdparty_")]:
            registry.unregister(kind, name)
        table.update(before[kind])
    for name in [m for m in sys.modules if m.startswith("thirdparty_")]:
        del sys.modules[name]


def test_a_package_taking_a_builtin_name_is_refused_and_the_builtin_kept(
    fresh_discovery: Path,
) -> None:
    _fake_distribution(fresh_discovery, "thirdparty-omp", "thirdparty_omp", "omp")
    with pytest.warns(RuntimeWarning) as warned:
        broken = registry.load_plugins()
    message = broken["thirdparty_omp.solver"]
    assert "thirdparty-omp==1.0" in message  # the package
    assert "'omp' is a built-in pursuit" in message and "reserved" in message  # the clash
    assert "rename it" in message and "thirdparty_omp_omp" in message  # the fix
    assert any("thirdparty_omp.solver" in str(w.message) for w in warned)
    entry = registry.get("pursuit", "omp")
    assert entry.cls is Omp and entry.distribution == "sparseland"
    assert isinstance(build("pursuit", "omp"), Omp)  # the built-in is what gets built


def test_two_packages_taking_one_name_are_both_refused(fresh_discovery: Path) -> None:
    _fake_distribution(fresh_discovery, "thirdparty-a", "thirdparty_a", "shared_solver")
    _fake_distribution(fresh_discovery, "thirdparty-b", "thirdparty_b", "shared_solver")
    with pytest.warns(RuntimeWarning, match="shared_solver"):
        broken = registry.load_plugins()
    [second] = [m for m in broken if m.startswith("thirdparty_")]  # the later one fails to load
    for text in (broken[second], _refusal("shared_solver")):
        assert "thirdparty-a==1.0" in text and "thirdparty-b==1.0" in text  # both named
        assert "refused for all of them" in text and "Uninstall all but one" in text
    assert "shared_solver" not in registry.names("pursuit")  # neither is used


def _refusal(name: str) -> str:
    with pytest.raises(DuplicatePluginError) as info:
        build("pursuit", name)
    return str(info.value)


def test_an_unannotated_field_is_refused_with_the_fix() -> None:
    @dataclass
    class Cfg(PursuitConfig):
        lam = 0.1  # looks like a field; without the annotation the dataclass drops it

    with pytest.raises(TypeError) as info:
        registry.register_pursuit("test_unannotated", config=Cfg)
    message = str(info.value)
    assert "pursuit 'test_unannotated'" in message and "`lam = 0.1` without a type" in message
    assert "`lam: float = 0.1`" in message  # the fix
    assert "test_unannotated" not in registry._STATE.entries["pursuit"]


def test_a_config_without_dataclass_is_refused_with_the_fix() -> None:
    class Cfg(PursuitConfig):  # derives from a dataclass but is not one itself
        lam: float = 0.1

    with pytest.raises(TypeError) as info:
        registry.register_pursuit("test_no_dataclass", config=Cfg)
    message = str(info.value)
    assert "config Cfg is not a dataclass" in message
    assert "put `@dataclass` on the line above `class Cfg`" in message


def test_a_class_outside_its_kinds_interface_is_refused_with_the_fix() -> None:
    @dataclass
    class Cfg(PluginConfig):
        pass

    class NotAPursuit(Task):  # a task's interface, registered as a pursuit
        pass

    with pytest.raises(TypeError) as info:
        registry.register_pursuit("test_wrong_base", config=Cfg)(NotAPursuit)
    message = str(info.value)
    assert "pursuit 'test_wrong_base': NotAPursuit does not derive from" in message
    assert "sparseland.interfaces.Pursuit" in message
    assert "`class NotAPursuit(Pursuit)`" in message  # the fix
    assert "test_wrong_base" not in registry._STATE.entries["pursuit"]


def test_super_post_init_works_for_every_config() -> None:
    @dataclass
    class Cfg(PluginConfig):
        width: int = 3

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.width < 1:
                raise ValueError("width must be >= 1")

    assert Cfg(width=2).width == 2
    with pytest.raises(ValueError, match="width"):
        Cfg(width=0)


def test_field_help_is_shown_by_the_plugins_command() -> None:
    @dataclass
    class Cfg(PursuitConfig):
        lam: float = field(default=0.1, metadata={"help": "weight of the l1 penalty"})
        steps: int = 5

    @registry.register_pursuit("test_helped", config=Cfg)
    class Helped(Pursuit):
        pass

    try:
        text = describe(["pursuit", "task"])
        assert "lam: float = 0.1  # weight of the l1 penalty" in text
        assert "steps: int = 5\n" in text  # no help: no comment
        assert "task:" in text and "dataset:" not in text  # several kinds, only those
    finally:
        registry.unregister("pursuit", "test_helped")
