"""Validate a composed config into typed plugin configs, before anything is built or logged."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from sparseland import registry
from sparseland.errors import ConfigError
from sparseland.interfaces.contracts import require
from sparseland.kinds import KINDS
from sparseland.problems import Problem

PLUGIN_GROUPS = KINDS  # the model first


@dataclass
class RunSpec:
    """The validated dataclass config of every plugin group present in the run."""

    configs: dict[str, Any]

    def __getitem__(self, group: str) -> Any:
        return self.configs.get(group)

    def capabilities(self, group: str) -> frozenset[type]:
        """What the run's plugin of ``group`` provides with its config (contracts)."""
        config = self.configs.get(group)
        if config is None:
            return frozenset()
        cls: Any = registry.get(group, config.name).cls
        found: frozenset[type] = cls.capabilities(config)
        return found

    def task_needs(self, group: str) -> tuple[type, ...]:
        """What the run's task needs of the plugin of ``group`` ("model" or "dataset")."""
        task = self.configs.get("task")
        if task is None:
            return ()
        cls: Any = registry.get("task", task.name).cls
        needs: tuple[type, ...] = cls.needs_model if group == "model" else cls.needs_data
        return needs

    @staticmethod
    def provides(group: str, name: str, needs: Iterable[type]) -> bool:
        """Whether plugin ``name`` of ``group`` provides all of ``needs`` (with its defaults)."""
        cls: Any = registry.get(group, name).cls
        return set(needs) <= cls.capabilities(None)

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
    """Combinations that cannot work are refused before training starts: the task's needs
    against what the model and the dataset provide (the contracts), then the model's own rules."""
    model = spec["model"]
    if model is None:
        return
    task = spec["task"]
    if task is not None:
        task_cls: Any = registry.get("task", task.name).cls
        for group, needs in (("model", task_cls.needs_model), ("dataset", task_cls.needs_data)):
            if spec[group] is not None:
                require(
                    needs,
                    spec.capabilities(group),
                    f"task '{task.name}'",
                    f"{group} '{spec[group].name}'",
                    group,
                    [n for n in registry.names(group) if spec.provides(group, n, needs)],
                )
    model_cls: Any = registry.get("model", model.name).cls
    model_cls.check_compatible(spec)
