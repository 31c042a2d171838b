"""All-reduce a learner's statistics across Lightning processes (DDP, any backend)."""

from __future__ import annotations

import os
from typing import Any

import torch
from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry


def reduce_statistics(stats: dict[str, torch.Tensor], trainer: Any) -> dict[str, torch.Tensor]:
    """Sum every statistic over processes; concatenate those named ``gather_*``.

    With one process this is the identity, so single- and multi-process runs share one path.
    """
    if trainer is None or trainer.world_size <= 1:
        return stats
    strategy = trainer.strategy
    out: dict[str, torch.Tensor] = {}
    for key, value in stats.items():
        if key.startswith("gather_"):
            gathered = strategy.all_gather(value.contiguous())  # (world, n, ...)
            out[key] = gathered.reshape(-1, *value.shape[1:])
        else:
            out[key] = strategy.reduce(value.clone(), reduce_op="sum")
    return out


def launched_rank() -> int:
    """This process's place in a run launched once per process (torchrun, SLURM's srun, one
    ``sparseland`` per node with ``NODE_RANK``, Lightning's own re-launch with ``LOCAL_RANK``);
    0 for the process that records the run, and for any run launched once."""
    names = ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK")
    return max(int(os.environ.get(name) or 0) for name in names)


# Lightning's DDP wraps the model in DistributedDataParallel, which refuses a module with no
# parameter that requires a gradient (a dictionary whose atoms are updated in closed form from
# all-reduced statistics). This strategy wraps only models that have such parameters, so one
# ``trainer=ddp`` serves both kinds of model.


class StatisticsDDPStrategy(DDPStrategy):
    def configure_ddp(self) -> None:
        assert self.model is not None
        if any(p.requires_grad for p in self.model.parameters()):
            super().configure_ddp()
        # else: the model all-reduces what it needs itself; every rank keeps the same weights


for _name, _method in (("ddp_statistics", "popen"), ("ddp_statistics_spawn", "spawn")):
    StrategyRegistry.register(
        _name,
        StatisticsDDPStrategy,
        description="DDP that wraps only models with gradient-trained parameters",
        override=True,
        start_method=_method,
    )
