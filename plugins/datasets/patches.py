"""Dataset ``patches``: small patches of natural images, train and test images disjoint."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from sparseland import PluginConfig, option, register_dataset
from sparseland.errors import check
from sparseland.interfaces import SparselandDataModule, contracts
from sparseland.plugins.datasets.natural_images import check_image_split, load_image
from sparseland.plugins.preprocess.patches import random_patches


@dataclass
class PatchesDatasetConfig(PluginConfig):
    train_images: list[str] = option(
        ["astronaut", "coffee", "chelsea", "rocket", "clock"],
        "bundled scikit-image names or image paths for the training patches",
    )
    test_images: list[str] = option(["camera", "moon"], "images of the test patches")
    # the split fields every dataset declares, one meaning across datasets (docs/plugins.md)
    patch_size: int = option(8, "side of the square patches, in pixels")
    n_train: int = option(20000, "training patches")
    n_val: int = option(2000, "validation patches")
    n_test: int = option(5000, "test patches")
    batch_size: int = option(256, "patches per batch")
    seed: int = option(0, "seed of the patch positions")

    def __post_init__(self) -> None:
        check(self.patch_size >= 2, "patch_size", f"must be >= 2, got {self.patch_size}")
        values = vars(self)
        for key in ("n_train", "n_val", "n_test", "batch_size"):
            check(values[key] >= 1, key, f"must be >= 1, got {values[key]}")
        check_image_split(self.train_images, self.test_images)


class SignalDataset(Dataset[dict[str, torch.Tensor]]):
    """Rows of ``x`` (preprocessed) with their ``raw`` signals."""

    def __init__(self, x: torch.Tensor, raw: torch.Tensor) -> None:
        self.x, self.raw = x, raw

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "raw": self.raw[i]}


@register_dataset("patches", config=PatchesDatasetConfig)
class PatchesDataModule(SparselandDataModule):
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
        raw = {
            "train": random_patches(train_imgs, c.n_train, c.patch_size, gen),
            "val": random_patches(test_imgs, c.n_val, c.patch_size, gen),
            "test": random_patches(test_imgs, c.n_test, c.patch_size, gen),
        }
        transform = self.fit_preprocessor(raw["train"])
        self.splits = {k: SignalDataset(transform(v), v) for k, v in raw.items()}
        self.signal_shape = (c.patch_size * c.patch_size,)
        self.patch_shape = (c.patch_size, c.patch_size)
        self._ready = True
