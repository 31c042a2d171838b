"""All-reduce a learner's statistics across Lightning processes (DDP, any backend)."""

from __future__ import annotations

from typing import Any

import torch


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
