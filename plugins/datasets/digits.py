"""Dataset ``digits``: scikit-learn's bundled 8×8 handwritten digits (1797 images, 10 classes;
no download), split into train / val / test with every class in the same proportion."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparseland import PluginConfig, option, register_dataset
from sparseland.errors import check
from sparseland.plugins.datasets.labelled_images import LabelledImagesDataModule, stratified_split


@dataclass
class DigitsConfig(PluginConfig):
    test_fraction: float = option(0.25, "share of the images held out for testing")
    val_fraction: float = option(0.1, "of what is left after the test split")
    flatten: bool = option(False, "x as rows (n, 64) instead of images (n, 1, 8, 8)")
    batch_size: int = option(128, "signals per batch")
    seed: int = option(0, "seed of the splits")

    def __post_init__(self) -> None:
        check(
            0 < self.test_fraction < 1,
            "test_fraction",
            f"must be in (0, 1), got {self.test_fraction}",
        )
        check(
            0 < self.val_fraction < 1, "val_fraction", f"must be in (0, 1), got {self.val_fraction}"
        )
        check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")


@register_dataset("digits", config=DigitsConfig)
class DigitsDataModule(LabelledImagesDataModule):
    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        from sklearn.datasets import load_digits

        data = load_digits()
        images = torch.from_numpy(data.images).float() / 16.0  # pixel counts 0..16 → [0, 1]
        labels = torch.from_numpy(data.target).long()
        gen = torch.Generator().manual_seed(self.config.seed)
        rest, test = stratified_split(labels, self.config.test_fraction, gen)
        train, val = stratified_split(labels[rest], self.config.val_fraction, gen)
        train, val = rest[train], rest[val]
        idx = {"train": train, "val": val, "test": test}
        self.finish_setup(
            {k: images[v] for k, v in idx.items()},
            {k: labels[v] for k, v in idx.items()},
            n_classes=10,
        )
        self._ready = True
