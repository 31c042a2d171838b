"""A stand-in for a run's datamodule when its model is rebuilt away from the data.

Models read a few facts from their datamodule when they are built (signal shape, patch shape,
number of classes, the preprocessor) and some initialise from training signals. The recorded
description gives the facts; a couple of seeded random signals of the right shape stand in for
the training set, whose only use here is an initial state that the saved state then replaces.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from sparseland.interfaces import Preprocessor, SparselandDataModule


class _Signals(Dataset[dict[str, torch.Tensor]]):
    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[index]}


class RecordedData(SparselandDataModule):
    def __init__(
        self, config: Any, preprocessor: Preprocessor | None, data: dict[str, Any]
    ) -> None:
        super().__init__(config, preprocessor)
        self.signal_shape = tuple(data.get("signal_shape") or ())
        self.n_classes = int(data.get("n_classes") or 0)
        self.has_labels = bool(data.get("has_labels", False))
        self.signal_kind = str(data.get("signal_kind", "vector"))
        patch = data.get("patch_shape")
        self.patch_shape = None if patch is None else tuple(patch)
        self.sigma = data.get("sigma")
        sample = tuple(data.get("sample_shape") or self.signal_shape)
        generator = torch.Generator().manual_seed(0)
        x = torch.rand(2, *sample, generator=generator)
        self.splits = {split: _Signals(x) for split in ("train", "val", "test")}

    def setup(self, stage: str | None = None) -> None:
        return None
