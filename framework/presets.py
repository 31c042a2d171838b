"""YAML presets shipped by plugin packages.

A plugin package may ship ``conf/<group>/<name>.yaml`` next to its ``__init__.py``; each file
is published in Hydra's config repository (as if that ``conf`` were on the search path), so
``sparseland experiment=<name>`` finds a third party's preset exactly like ours. A first line
``# @package _global_`` is honoured.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from sparseland.registry import ENTRY_POINT_GROUP


def plugin_conf_dirs() -> list[Path]:
    dirs = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            module = importlib.import_module(ep.value.split(":")[0])
        except Exception:
            continue  # reported by load_plugins
        for base in getattr(module, "__path__", []):
            conf = Path(base) / "conf"
            if conf.is_dir():
                dirs.append(conf)
    return dirs


def register_plugin_presets() -> None:
    cs = ConfigStore.instance()
    for conf in plugin_conf_dirs():
        for path in sorted(conf.rglob("*.yaml")):
            group = str(path.parent.relative_to(conf)).replace("\\", "/")
            first = path.read_text().splitlines()[:1]
            package = (
                first[0].split("@package", 1)[1].strip()
                if first and "@package" in first[0]
                else None
            )
            node = OmegaConf.load(path)
            cs.store(
                group=None if group == "." else group,
                name=path.stem,
                node=node,
                package=package,
                provider=str(conf),
            )
