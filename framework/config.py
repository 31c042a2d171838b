"""Typed schemas of the framework's own config groups (the plugins' come from the registry)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class TrainerConfig:
    """Arguments of ``lightning.Trainer`` that a run may set."""

    max_epochs: int = 1
    max_steps: int = -1
    accelerator: str = "auto"
    devices: Any = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    log_every_n_steps: int = 10
    val_check_interval: Any = 1.0
    check_val_every_n_epoch: int = 1
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    num_sanity_val_steps: int = 0
    gradient_clip_val: Any = None
    enable_progress_bar: bool = True
    deterministic: bool = False
    # Checkpoint every this many training steps (0: at the end of every epoch only).
    checkpoint_every_n_steps: int = 0


@dataclass
class LoggerConfig:
    tracking_uri: Any = None  # None: MLFLOW_TRACKING_URI, else SQLite under paths.outputs
    experiment: str = "sparseland"
    run_name: Any = None
    offline: bool = False  # record to a local store when the server is down; upload later
    log_model: bool = True  # log the trained model (runs:/<id>/model; sparseland.load)
    register_model: Any = None  # a name: register the model as a new version of it


@dataclass
class PathsConfig:
    outputs: str = "outputs"


def register_framework_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(group="trainer", name="base", node=TrainerConfig, provider="sparseland")
    cs.store(group="logger", name="base", node=LoggerConfig, provider="sparseland")
    cs.store(group="paths", name="base", node=PathsConfig, provider="sparseland")
