"""Sparseland's core: registry, interfaces, operators, backends, runner, tracking, metrics.

The core knows no method; every method is a plugin (see ``plugins/`` and docs/plugins.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sparseland.options import option
from sparseland.registry import (
    PluginConfig,
    build,
    load_plugins,
    register,
    register_dataset,
    register_learner,
    register_model,
    register_preprocessor,
    register_pursuit,
    register_task,
)

if TYPE_CHECKING:
    from sparseland.loading import LoadedModel


def load(uri: str, device: str = "cpu", tracking_uri: str | None = None) -> LoadedModel:
    """The trained model logged at ``uri`` (``runs:/<run id>``, ``models:/<name>/<version>``),
    rebuilt on ``device`` with its plugins and preprocessor (see sparseland/loading.py)."""
    from sparseland.loading import load as load_model

    return load_model(uri, device=device, tracking_uri=tracking_uri)


def checkpoint_info(path: str) -> dict[str, Any]:
    """What produced the Lightning checkpoint at ``path``: the resolved config, the plugins
    with their packages and versions, the Sparseland version and commit (checkpoint_record.py).
    """
    from sparseland.checkpoint_record import read_checkpoint_info

    return read_checkpoint_info(path)


__all__ = [
    "PluginConfig",
    "build",
    "checkpoint_info",
    "load",
    "load_plugins",
    "option",
    "register",
    "register_dataset",
    "register_learner",
    "register_model",
    "register_preprocessor",
    "register_pursuit",
    "register_task",
]
