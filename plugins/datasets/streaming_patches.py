"""Dataset ``streaming_patches``: natural-image patches drawn on the fly, never all in memory.

For the online learner on more data than fits in memory: the training split is an
IterableDataset that draws ``n_train`` random patches of the training images in blocks of
``batch_size`` (a fresh block per step, nothing kept), so memory does not grow with
``n_train`` (measured in benchmarks/results/learners.md). Each DDP process draws its own share
(``n_train`` / world size) from its own seed. The preprocessor is fitted on ``n_fit`` patches;
validation and test patches come from the disjoint test images and are held in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, IterableDataset

from sparseland import option, register_dataset
from sparseland.errors import check
from sparseland.interfaces import SparselandDataModule, contracts
from sparseland.plugins.datasets.natural_images import load_image
from sparseland.plugins.datasets.patches import PatchesDatasetConfig, SignalDataset
from sparseland.plugins.preprocess.patches import random_patches

Batch = dict[str, torch.Tensor]


@dataclass
class StreamingPatchesConfig(PatchesDatasetConfig):
    """The fields of ``patches``; ``n_train`` counts the patches drawn per epoch."""

    n_train: int = option(1_000_000, "patches per epoch, drawn on the fly")
    n_fit: int = option(10000, "patches the preprocessor is fitted on")
    batch_size: int = option(1024, "patches per batch")

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.n_fit >= 1, "n_fit", f"must be >= 1, got {self.n_fit}")


class PatchStream(IterableDataset[Batch]):
    """Yields whole batches {"x", "raw"} of freshly drawn patches (use ``batch_size=None``)."""

    def __init__(
        self,
        images: list[torch.Tensor],
        n: int,
        size: int,
        batch_size: int,
        seed: int,
        transform: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        self.images, self.n, self.size = images, n, size
        self.batch_size, self.seed, self.transform = batch_size, seed, transform
        self.epoch = 0

    def _share(self) -> tuple[int, int]:
        """(this process's rank, its number of patches)."""
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            rank, world = dist.get_rank(), dist.get_world_size()
        else:
            rank, world = 0, 1
        return rank, self.n // world

    def __len__(self) -> int:
        return -(-self._share()[1] // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        rank, n = self._share()
        gen = torch.Generator().manual_seed(self.seed + 1_000_003 * (rank + 1) + 7919 * self.epoch)
        self.epoch += 1
        for start in range(0, n, self.batch_size):
            raw = random_patches(self.images, min(self.batch_size, n - start), self.size, gen)
            yield {"x": self.transform(raw), "raw": raw}


@register_dataset("streaming_patches", config=StreamingPatchesConfig)
class StreamingPatchesDataModule(SparselandDataModule):
    provides = (contracts.PatchGeometry,)
    signal_kind = "vector"

    # setup's opening, alike in every dataset: runs once, draws from the run's seed
    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        c = self.config
        gen = torch.Generator().manual_seed(c.seed)
        train_imgs = [load_image(n) for n in c.train_images]
        test_imgs = [load_image(n) for n in c.test_images]
        fit = random_patches(train_imgs, c.n_fit, c.patch_size, gen)
        transform = self.fit_preprocessor(fit)
        self.stream = PatchStream(
            train_imgs, c.n_train, c.patch_size, c.batch_size, c.seed, transform
        )
        held_out = {
            s: random_patches(test_imgs, n, c.patch_size, gen)
            for s, n in (("val", c.n_val), ("test", c.n_test))
        }
        # "train" holds the fitting sample: models initialise their dictionary from it.
        self.splits = {"train": SignalDataset(transform(fit), fit)}
        self.splits.update({s: SignalDataset(transform(v), v) for s, v in held_out.items()})
        self.signal_shape = (c.patch_size * c.patch_size,)
        self.patch_shape = (c.patch_size, c.patch_size)
        self._ready = True

    def train_dataloader(self) -> DataLoader[Batch]:
        return DataLoader(self.stream, batch_size=None)

    def _loader(self, split: str) -> DataLoader[Batch]:
        return DataLoader(self.splits[split], batch_size=self.config.batch_size)

    def val_dataloader(self) -> DataLoader[Batch]:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader[Batch]:
        return self._loader("test")
