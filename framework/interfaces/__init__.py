"""The interfaces every plugin implements. See docs/plugins.md for what is required."""

from sparseland.interfaces.dataset import SparselandDataModule
from sparseland.interfaces.learner import DictionaryLearner
from sparseland.interfaces.model import ModelContext, SparselandModule
from sparseland.interfaces.plugin import Plugin
from sparseland.interfaces.preprocess import Preprocessor
from sparseland.interfaces.pursuit import Pursuit, PursuitConfig, PursuitInfo
from sparseland.interfaces.task import Task

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
