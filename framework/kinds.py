"""The plugin kinds: one table that every other place reads (registry, CLI, app, docs tests).

Each kind is also a Hydra config group of the same name. ``base`` is the interface a plugin of
that kind must derive from, named by path so that reading the table imports nothing heavy
(the model and dataset interfaces import Lightning).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str  # the kind and its config group: ``pursuit=fista``
    decorator: str  # the registering decorator in ``sparseland``: ``register_pursuit``
    base: str  # the interface, ``module:Class``
    built_with: str  # the constructor's arguments, for messages and docs


# In the order a run validates them (the model first) and `sparseland-plugins` lists them.
KIND_TABLE: tuple[Kind, ...] = (
    Kind(
        "model",
        "register_model",
        "sparseland.interfaces.model:SparselandModule",
        "(config, context)",
    ),
    Kind("pursuit", "register_pursuit", "sparseland.interfaces.pursuit:Pursuit", "(config)"),
    Kind(
        "learner", "register_learner", "sparseland.interfaces.learner:DictionaryLearner", "(config)"
    ),
    Kind(
        "preprocess",
        "register_preprocessor",
        "sparseland.interfaces.preprocess:Preprocessor",
        "(config)",
    ),
    Kind(
        "dataset",
        "register_dataset",
        "sparseland.interfaces.dataset:SparselandDataModule",
        "(config, preprocessor)",
    ),
    Kind("task", "register_task", "sparseland.interfaces.task:Task", "(config)"),
)

KINDS: tuple[str, ...] = tuple(k.name for k in KIND_TABLE)
BY_NAME: dict[str, Kind] = {k.name: k for k in KIND_TABLE}


def kind(name: str) -> Kind:
    """The table row of ``name``; an unknown kind is refused with the list of kinds."""
    if name not in BY_NAME:
        raise ValueError(f"Unknown plugin kind '{name}'; kinds are {', '.join(KINDS)}.")
    return BY_NAME[name]
