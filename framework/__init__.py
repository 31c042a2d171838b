"""Sparseland's core: registry, interfaces, operators, backends, runner, tracking, metrics.

The core knows no method; every method is a plugin (see ``plugins/`` and docs/plugins.md).
"""

from sparseland.registry import (
    PluginConfig,
    build,
    register_dataset,
    register_decoder,
    register_encoder,
    register_learner,
    register_model,
    register_preprocessor,
    register_pursuit,
    register_task,
)

__all__ = [
    "PluginConfig",
    "build",
    "register_dataset",
    "register_decoder",
    "register_encoder",
    "register_learner",
    "register_model",
    "register_preprocessor",
    "register_pursuit",
    "register_task",
]
