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

The server's imports take as long as the sweep process's own (about 4 CPU-seconds here), and a
worker can start only once they are done. Started when the sweep's first jobs are handed out,
they delayed every job by that much; so the server starts as early as the sweep is known: at
the command line (``start_for_command_line``, when it names a joblib multirun), while the sweep
process imports the plugins and composes the config on another core, or else when the sweep
starts (``PreloadWorkers``). Its last import, worker_prefork.py, freezes the imported objects
out of the garbage collector's reach, so that no worker pays a full collection over them.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

# What every job imports before its first step: the Lightning runner and its dependencies.
PRELOAD = ("torch", "lightning.pytorch", "mlflow", "sparseland.app", "sparseland.runner")
# What a job imports on first use, in every worker: MLflow's SQL store, its SQLite dialect and
# schema check, the thread limits, the preprocessor's artifact format and image reading.
FIRST_USE = (
    "mlflow.store.tracking.sqlalchemy_store",
    "sqlalchemy.dialects.sqlite",
    "alembic.command",
    "threadpoolctl",
    "safetensors.torch",
    "skimage.io",
    "skimage.data",
)
# Imported after everything else: freezes the server's objects before it forks any worker.
PREFORK = "sparseland.worker_prefork"
# Command-line flags after which Hydra runs no job.
NO_JOBS = (
    *("--cfg", "-c", "--info", "-i", "--help", "-h"),
    *("--hydra-help", "--shell-completion", "-sc"),
)


def builtin_plugin_modules() -> list[str]:
    """Every built-in plugin module. A worker imports them all before its first job anyway: the
    sweep hands it Hydra's config store, whose typed configs name the config class of every
    registered plugin, and unpickling a class imports its module."""
    from sparseland.plugins import PLUGIN_INDEX

    return sorted(
        {f"sparseland.plugins.{m}" for names in PLUGIN_INDEX.values() for m in names.values()}
    )


def uses_joblib(config: DictConfig) -> bool:
    launcher = config.hydra.launcher.get("_target_", "") if "launcher" in config.hydra else ""
    return "joblib" in str(launcher)


def preload_workers(modules: Sequence[str] = PRELOAD, start: bool = False) -> None:
    """Make loky start its workers by forking a server that has imported ``modules``; with
    ``start``, start that server now (otherwise the first worker starts it). A server already
    running stays as it is, with the modules it was started with."""
    from joblib.externals.loky.backend.context import set_start_method

    if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows: loky's own
        return
    # A CUDA context does not survive a fork; torch's default device-count check can start one,
    # the NVML check does not. The server (and its workers) inherit this environment.
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    multiprocessing.set_forkserver_preload([*modules, PREFORK])
    set_start_method("forkserver", force=True)
    if start:
        from multiprocessing import forkserver

        forkserver.ensure_running()


def command_line_overrides(argv: Sequence[str]) -> dict[str, str]:
    """``key=value`` overrides of a command line (``+``/``~`` prefixes dropped)."""
    pairs = (a.split("=", 1) for a in argv if "=" in a and not a.startswith("-"))
    return {key.lstrip("+~"): value for key, value in pairs}


def is_preloaded_joblib_sweep(argv: Sequence[str]) -> bool:
    """Whether the command line asks for a multirun on the joblib launcher with preloaded
    workers (a launcher or ``workers.preload`` set in a config file is seen only at the sweep's
    start)."""
    overrides = command_line_overrides(argv)
    return (
        (any(a in ("-m", "--multirun") for a in argv) or overrides.get("hydra.mode") == "MULTIRUN")
        and not any(a in NO_JOBS for a in argv)
        and "joblib" in overrides.get("hydra/launcher", "")
        and overrides.get("workers.preload", "true").lower() in ("true", "1", "yes", "on")
    )


_started_for_command_line = False


def start_for_command_line(argv: Sequence[str]) -> bool:
    """Start the preloaded fork server now when ``argv`` asks for a joblib sweep (see the
    module); returns whether it did."""
    global _started_for_command_line
    if not is_preloaded_joblib_sweep(argv):
        return False
    preload_workers([*PRELOAD, *FIRST_USE, *builtin_plugin_modules()], start=True)
    _started_for_command_line = True
    return True


class PreloadWorkers(Callback):
    """Switches the joblib launcher's workers to the preloaded fork server and starts it, unless
    the command line already did (see the module). Listed first among the sweep callbacks, so
    that the server imports while the others set the sweep up."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        workers = config.get("workers")
        if workers is not None and workers.get("preload", True) and uses_joblib(config):
            preload_workers([*PRELOAD, *FIRST_USE, *builtin_plugin_modules()], start=True)
        elif _started_for_command_line:  # a config file turned it off: loky's own start method
            from joblib.externals.loky.backend.context import set_start_method

            set_start_method(None, force=True)
