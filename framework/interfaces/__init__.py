"""The interfaces every plugin implements. See docs/plugins.md for what is required."""

from framework.interfaces.dataset import SparselandDataModule
from framework.interfaces.learner import DictionaryLearner
from framework.interfaces.model import ModelContext, SparselandModule
from framework.interfaces.plugin import Plugin
from framework.interfaces.preprocess import Preprocessor
from framework.interfaces.pursuit import Pursuit, PursuitConfig, PursuitInfo
from framework.interfaces.task import Task

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
