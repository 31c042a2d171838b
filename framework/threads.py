"""Torch and BLAS threads for a job: its share of the cores when a launcher runs several at once.

Every process starts torch and BLAS with one thread per core; eight parallel sweep jobs on two
cores then run sixteen busy threads per core and crawl. ``threads: auto`` (the default) gives a
job of a parallel launcher its share: ``cores // n_jobs`` under joblib, ``cpus_per_task`` under
submitit (or SLURM's ``SLURM_CPUS_PER_TASK``); a single run, or a sweep that runs its jobs one
after another, keeps torch's default. An integer sets the count outright.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from sparseland.errors import ConfigError


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def thread_share(setting: Any, launcher: Mapping[str, Any] | None, cores: int) -> int | None:
    """The thread count for one job (None: leave torch's default).

    ``launcher``: the Hydra launcher config of a sweep job (None outside a sweep).
    """
    if isinstance(setting, int) and not isinstance(setting, bool):
        if setting < 1:
            raise ConfigError("threads", f"{setting} is not a thread count", "use auto or >= 1")
        return setting
    if setting != "auto":
        raise ConfigError("threads", f"'{setting}' is not a thread count", "use auto or >= 1")
    if launcher is None:
        return None
    slurm = os.environ.get("SLURM_CPUS_PER_TASK")
    if slurm:
        return max(1, int(slurm))
    if launcher.get("cpus_per_task"):
        return max(1, int(launcher["cpus_per_task"]))
    n_jobs = launcher.get("n_jobs")
    if n_jobs is None:  # the basic launcher runs one job at a time
        return None
    n_jobs = int(n_jobs)
    if n_jobs < 0:  # joblib: -1 is every core, -2 all but one, ...
        n_jobs = max(1, cores + 1 + n_jobs)
    return max(1, cores // max(1, n_jobs))


def launcher_config() -> Mapping[str, Any] | None:
    """The launcher of the Hydra sweep this job belongs to, or None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    launcher = OmegaConf.to_container(HydraConfig.get().launcher, resolve=True)
    return {str(k): v for k, v in launcher.items()} if isinstance(launcher, dict) else {}


def apply_threads(setting: Any) -> int:
    """Set torch's (and BLAS libraries') thread count for this job; returns the count in use."""
    count = thread_share(setting, launcher_config(), available_cores())
    if count is not None:
        torch.set_num_threads(count)
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=count)  # numpy/scipy's BLAS and OpenMP pools
        except ImportError:
            pass
    return torch.get_num_threads()
