"""Building a built-in from Python imports only what it needs; the kinds are one table."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import sparseland
from sparseland import registry
from sparseland.app import CONFIG_GROUPS
from sparseland.kinds import KIND_TABLE, KINDS
from sparseland.registry_checks import interface_of

BUILD_FISTA = """
import json, sys, time
start = time.perf_counter()
import torch
from sparseland import build
pursuit = build("pursuit", "fista", lam=0.1, max_iter=20)
codes = pursuit(torch.randn(4, 8), torch.randn(8, 16))
print(json.dumps({
    "seconds": time.perf_counter() - start,
    "shape": list(codes.shape),
    "lightning": "lightning" in sys.modules,
    "plugins": sorted(m for m in sys.modules if m.startswith("sparseland.plugins.")),
}))
"""


def test_building_a_pursuit_imports_neither_lightning_nor_other_plugins() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", BUILD_FISTA],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["shape"] == [4, 16]
    assert result["lightning"] is False
    # FISTA's module and the pursuit modules it is built from; no model, dataset or task
    assert "sparseland.plugins.pursuit.fista" in result["plugins"]
    assert all(m.startswith("sparseland.plugins.pursuit") for m in result["plugins"])
    print(f"first build('pursuit', 'fista') in a fresh interpreter: {result['seconds']:.2f} s")


def test_the_index_of_builtins_matches_what_their_modules_register() -> None:
    index = registry.builtin_index()
    registered = {
        (e.kind, e.name): e.module.removeprefix("sparseland.plugins.")
        for e in registry.entries()
        if e.builtin
    }
    indexed = {
        (kind, name): module for kind, names in index.items() for name, module in names.items()
    }
    missing = {
        f'"{k[1]}": "{m}",  # under "{k[0]}"' for k, m in registered.items() if k not in indexed
    }
    assert not missing, f"add to PLUGIN_INDEX in plugins/__init__.py: {sorted(missing)}"
    assert indexed == registered
    assert set(index) <= set(KINDS)


def test_every_kind_has_its_decorator_interface_and_config_group() -> None:
    for row in KIND_TABLE:
        decorator = getattr(sparseland, row.decorator)
        assert decorator is getattr(registry, row.decorator)
        assert decorator.__name__ == row.decorator
        assert isinstance(interface_of(row.name), type)
        assert row.name in CONFIG_GROUPS
    assert not {"encoder", "decoder"} & set(KINDS)  # no kind without a plugin
    public = {name for name in sparseland.__all__ if name.startswith("register_")}
    assert public == {row.decorator for row in KIND_TABLE}
    guide = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    documented = set(re.findall(r"`(register_\w+)`", guide)) - {"register_buffer"}
    assert documented == public  # the plugin guide's table of kinds is the same table
