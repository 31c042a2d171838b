"""Validate a composed config into typed plugin configs, before anything is built or logged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from sparseland import registry
from sparseland.errors import ConfigError
from sparseland.problems import Problem

PLUGIN_GROUPS = ("model", "pursuit", "learner", "preprocess", "dataset", "task")


@dataclass
class RunSpec:
    """The validated dataclass config of every plugin group present in the run."""

    configs: dict[str, Any]

    def __getitem__(self, group: str) -> Any:
        return self.configs.get(group)

    @property
    def problem(self) -> Problem | None:
        """The problem the run's pursuit solves (None without a pursuit)."""
        pursuit = self.configs.get("pursuit")
        if pursuit is None:
            return None
        from sparseland.interfaces.pursuit import Pursuit

        cls = registry.get("pursuit", pursuit.name).cls
        assert issubclass(cls, Pursuit)
        return cls.problem_from(pursuit)


def validate(cfg: DictConfig) -> RunSpec:
    """Check every plugin config (``__post_init__`` ranges) and the plugins' compatibility."""
    configs: dict[str, Any] = {}
    for group in PLUGIN_GROUPS:
        node = cfg.get(group)
        if node is None:
            continue
        if not isinstance(node, DictConfig) or "name" not in node:
            raise ConfigError(
                group, "is not a plugin config", f"choose one of {registry.names(group)}"
            )
        configs[group] = registry.config_from_node(group, node)
    spec = RunSpec(configs)
    _check_compatible(spec)
    return spec


def _check_compatible(spec: RunSpec) -> None:
    """Combinations that cannot work are refused by name before training starts."""
    model = spec["model"]
    if model is None:
        return
    model_cls = registry.get("model", model.name).cls
    dataset_cls = registry.get("dataset", spec["dataset"].name).cls if spec["dataset"] else None
    task_cls = registry.get("task", spec["task"].name).cls if spec["task"] else None
    needs_labels = task_cls is not None and getattr(task_cls, "needs_labels", False)
    if needs_labels and dataset_cls is not None and not getattr(dataset_cls, "has_labels", False):
        labelled = [
            n
            for n in registry.names("dataset")
            if getattr(registry.get("dataset", n).cls, "has_labels", False)
        ]
        raise ConfigError(
            "task",
            f"'{spec['task'].name}' needs labels and dataset '{spec['dataset'].name}' has none",
            f"use a labelled dataset: {', '.join(labelled)}",
        )
    checker = getattr(model_cls, "check_compatible", None)
    if checker is not None:
        checker(spec)
