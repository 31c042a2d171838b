"""Data utilities shared by datasets."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochShuffleSampler(Sampler[int]):
    """A random order that depends only on (seed, epoch).

    Lightning calls ``set_epoch`` every epoch, so a run resumed from a checkpoint sees exactly
    the batches an uninterrupted run would have seen (a generator seeded once would restart).
    """

    def __init__(self, length: int, seed: int) -> None:
        self.length, self.seed, self.epoch = length, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.length, generator=gen).tolist())
