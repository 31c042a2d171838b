"""Registry: unknown names, duplicates, broken plugins, entry-point discovery, Python API."""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from sparseland import PluginConfig, build, registry
from sparseland.errors import ConfigError, DuplicatePluginError, UnknownPluginError
from sparseland.interfaces import Pursuit


def test_shipped_plugins_are_discovered_through_the_entry_point() -> None:
    assert {"ista", "fista"} <= set(registry.names("pursuit"))
    entry = registry.get("pursuit", "fista")
    assert entry.distribution == "sparseland"


def test_unknown_name_lists_registered_and_closest() -> None:
    with pytest.raises(UnknownPluginError) as info:
        registry.get("pursuit", "fistaa")
    message = str(info.value)
    assert "Did you mean 'fista'" in message
    for name in registry.names("pursuit"):
        assert name in message


def test_duplicate_name_is_refused_unless_override() -> None:
    @dataclass
    class Cfg(PluginConfig):
        pass

    other = type("Other", (Pursuit,), {})
    with pytest.raises(DuplicatePluginError, match="already registered"):
        registry.register_pursuit("fista", config=Cfg)(other)
    original = registry.get("pursuit", "fista")
    try:
        registry.register_pursuit("fista", config=Cfg, override=True)(other)
        assert registry.get("pursuit", "fista").cls.__name__ == "Other"
    finally:
        registry.register_pursuit("fista", config=original.config_cls, override=True)(original.cls)


def test_config_must_be_a_plugin_dataclass() -> None:
    with pytest.raises(TypeError, match="PluginConfig"):
        registry.register_pursuit("bad", config=dict)


def test_python_api_builds_a_working_pursuit() -> None:
    pursuit = build("pursuit", "fista", lam=0.1, max_iter=50)
    assert isinstance(pursuit, Pursuit)
    codes = pursuit(torch.randn(5, 16), torch.randn(16, 32))
    assert codes.shape == (5, 32)


def test_python_api_rejects_unknown_parameter_with_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"valid: .*lam"):
        build("pursuit", "fista", lamda=0.1)


def test_broken_plugin_is_reported_and_the_rest_load(tmp_path: Path, monkeypatch) -> None:
    """A fake installed distribution whose entry point names a package with one broken module."""
    pkg = tmp_path / "thirdparty_plugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "good.py").write_text(
        textwrap.dedent("""
        from dataclasses import dataclass
        from sparseland import PluginConfig, register_pursuit
        from sparseland.plugins.pursuit.ista import Ista

        @dataclass
        class GoodConfig(PluginConfig):
            lam: float = 0.1

        @register_pursuit("good_thirdparty", config=GoodConfig)
        class Good(Ista):
            pass
    """)
    )
    (pkg / "broken.py").write_text("raise ImportError('needs a library that is not installed')\n")
    dist = tmp_path / "thirdparty_plugins-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: thirdparty-plugins\nVersion: 1.2.3\n"
    )
    (dist / "entry_points.txt").write_text(
        "[sparseland.plugins]\nthirdparty = thirdparty_plugins\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry._STATE, "loaded", False)
    monkeypatch.setattr(registry._STATE, "broken", {})
    monkeypatch.setattr(registry._STATE, "packages", None)
    try:
        with pytest.warns(RuntimeWarning, match=r"thirdparty_plugins\.broken.*not installed"):
            broken = registry.load_plugins()
        assert "thirdparty_plugins.broken" in broken
        entry = registry.get("pursuit", "good_thirdparty")
        assert (entry.distribution, entry.version) == ("thirdparty-plugins", "1.2.3")
        assert "fista" in registry.names("pursuit")
    finally:
        registry.unregister("pursuit", "good_thirdparty")
        for name in [m for m in sys.modules if m.startswith("thirdparty_plugins")]:
            del sys.modules[name]


def test_plugins_command_lists_kinds_fields_and_defaults() -> None:
    from sparseland.cli_plugins import describe

    text = describe()
    assert "pursuit:" in text and "learner:" in text
    assert "lam: float = 0.1" in text
