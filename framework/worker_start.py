"""Start parallel sweep workers without paying for torch, Lightning and MLflow in each of them.

Hydra's joblib launcher runs its jobs in loky worker processes, and loky starts every worker as
a fresh interpreter: each one imports torch, Lightning and MLflow again (about 5 CPU-seconds
here), which a sweep run in one process pays once. On a small machine that start-up is most of
what a short job costs, and four workers on two cores paid it four times over.

With ``workers.preload`` set (the default), a sweep on the joblib launcher starts its workers
through a fork server instead (Python's ``multiprocessing`` "forkserver" start method, which loky
supports): one clean server process imports the modules once, and every worker is a fork of it.
The server is started by the sweep, not forked from it, so it holds no open MLflow connection,
no CUDA context and no thread pool; its workers run exactly the code a loky worker runs.
``workers.preload=false`` keeps loky's own start method.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

# What every job imports before its first step: the Lightning runner and its dependencies.
PRELOAD = ("torch", "lightning.pytorch", "mlflow", "sparseland.runner", "sparseland.plugins")


def chosen_plugin_modules(config: DictConfig) -> list[str]:
    """The modules of the built-in plugins the sweep's base config chooses (a job that sweeps
    over another plugin imports that one itself)."""
    from sparseland.plugins import PLUGIN_INDEX

    choices = config.hydra.get("runtime", {}).get("choices", {}) or {}
    return [
        f"sparseland.plugins.{PLUGIN_INDEX[kind][name]}"
        for kind, name in choices.items()
        if kind in PLUGIN_INDEX and name in PLUGIN_INDEX[kind]
    ]


def uses_joblib(config: DictConfig) -> bool:
    launcher = config.hydra.launcher.get("_target_", "") if "launcher" in config.hydra else ""
    return "joblib" in str(launcher)


def preload_workers(modules: Sequence[str] = PRELOAD) -> None:
    """Make loky start its workers by forking a server that has imported ``modules``."""
    from joblib.externals.loky.backend.context import set_start_method

    if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows: loky's own
        return
    # A CUDA context does not survive a fork; torch's default device-count check can start one,
    # the NVML check does not. The server (and its workers) inherit this environment.
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    multiprocessing.set_forkserver_preload(list(modules))
    set_start_method("forkserver", force=True)


class PreloadWorkers(Callback):
    """Switches the joblib launcher's workers to the preloaded fork server (see the module)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        workers = config.get("workers")
        if workers is not None and workers.get("preload", True) and uses_joblib(config):
            preload_workers([*PRELOAD, *chosen_plugin_modules(config)])
