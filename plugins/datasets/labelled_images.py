"""What the labelled image datasets (digits, MNIST) share: splits, preprocessing on rows,
images or flattened vectors, and loaders of ``{"x", "raw", "y"}`` batches."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from sparseland.interfaces import SparselandDataModule, contracts


class LabelledSignals(Dataset[dict[str, torch.Tensor]]):
    def __init__(self, x: torch.Tensor, raw: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.raw, self.y = x, raw, y

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "raw": self.raw[i], "y": self.y[i]}


def stratified_split(
    y: torch.Tensor, fraction: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (kept, held out), holding out ``fraction`` of every class (vectorised)."""
    order = torch.randperm(y.shape[0], generator=generator)
    y_perm = y[order]
    sorted_y, by_class = torch.sort(y_perm, stable=True)
    counts = torch.bincount(sorted_y)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(y.shape[0]) - starts[sorted_y]  # position within its class
    held = rank < torch.round(counts[sorted_y] * fraction)
    perm = order[by_class]
    return perm[~held].sort().values, perm[held].sort().values


class LabelledImagesDataModule(SparselandDataModule):
    provides = (contracts.PatchGeometry,)
    has_labels = True
    signal_kind = "image"

    @classmethod
    def signal_kind_of(cls, config: Any) -> str:
        return "vector" if config.flatten else "image"

    def finish_setup(
        self, images: dict[str, torch.Tensor], labels: dict[str, torch.Tensor], n_classes: int
    ) -> None:
        """``images[split]`` are (n, H, W) in [0, 1]. The preprocessor is fitted on the training
        rows and applied to every split; ``x`` is (n, 1, H, W), or rows with ``flatten``."""
        h, w = next(iter(images.values())).shape[1:]
        rows = {k: v.reshape(v.shape[0], -1).float() for k, v in images.items()}
        transform = self.fit_preprocessor(rows["train"])
        shape = (h * w,) if self.config.flatten else (1, h, w)
        self.splits = {
            k: LabelledSignals(
                transform(v).reshape(-1, *shape), v.reshape(-1, *shape), labels[k].long()
            )
            for k, v in rows.items()
        }
        self.signal_shape = shape
        self.patch_shape = (h, w)
        self.n_classes = n_classes
