"""The interfaces every plugin implements. See docs/plugins.md for what is required.

Each name is imported on first use: a pursuit reaches ``sparseland.interfaces.Pursuit`` without
importing the model and dataset interfaces, which import Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sparseland.interfaces.dataset import SparselandDataModule
    from sparseland.interfaces.learner import DictionaryLearner
    from sparseland.interfaces.model import ModelContext, SparselandModule
    from sparseland.interfaces.plugin import Plugin
    from sparseland.interfaces.preprocess import Preprocessor
    from sparseland.interfaces.pursuit import Pursuit, PursuitConfig, PursuitInfo
    from sparseland.interfaces.task import Task

# name -> the module under sparseland.interfaces that defines it
_WHERE = {
    "DictionaryLearner": "learner",
    "ModelContext": "model",
    "Plugin": "plugin",
    "Preprocessor": "preprocess",
    "Pursuit": "pursuit",
    "PursuitConfig": "pursuit",
    "PursuitInfo": "pursuit",
    "SparselandDataModule": "dataset",
    "SparselandModule": "model",
    "Task": "task",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'sparseland.interfaces' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"sparseland.interfaces.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DictionaryLearner",
    "ModelContext",
    "Plugin",
    "Preprocessor",
    "Pursuit",
    "PursuitConfig",
    "PursuitInfo",
    "SparselandDataModule",
    "SparselandModule",
    "Task",
]
