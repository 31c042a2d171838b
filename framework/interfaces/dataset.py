"""Datasets are LightningDataModules built from a config; they never download at run time.

Batches are dicts: ``x`` (the model's input, preprocessed), and where they apply ``raw``
(the signal before preprocessing), ``y`` (labels), ``clean`` (the target of a denoiser).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import lightning as L
import torch
from torch.utils.data import DataLoader

from sparseland.data import EpochShuffleSampler
from sparseland.interfaces.contracts import Labelled
from sparseland.interfaces.preprocess import Preprocessor


class SparselandDataModule(L.LightningDataModule):
    #: Whether batches carry labels ``y`` (a classification task checks this).
    has_labels: bool = False
    #: Whether the data are whole images (convolutional models) or vectors (patch models).
    signal_kind: str = "vector"
    #: The capabilities this datamodule provides (e.g. ``(NoisyImage, PatchGeometry)``);
    #: ``Labelled`` follows ``has_labels``.
    provides: ClassVar[tuple[type, ...]] = ()
    #: The training splits (map-style datasets by name), set by ``setup``.
    splits: dict[str, Any]
    #: Set by ``setup`` once the data are ready (setup runs once per datamodule).
    _ready: bool = False

    @classmethod
    def capabilities(cls, config: Any = None) -> frozenset[type]:
        """What a datamodule with ``config`` provides."""
        return frozenset(cls.provides) | ({Labelled} if cls.has_labels else set())

    def __init__(self, config: Any, preprocessor: Preprocessor | None = None) -> None:
        super().__init__()
        self.config = config
        self.preprocessor = preprocessor
        self.signal_shape: tuple[int, ...] = ()
        self.n_classes: int = 0
        self.splits = {}

    @property
    def seed(self) -> int:
        """The run's seed for this datamodule's random draws (0 for configs without one)."""
        return int(getattr(self.config, "seed", 0))

    @classmethod
    def signal_kind_of(cls, config: Any) -> str:
        """What a dataset with ``config`` yields ("vector" or "image"), known before building it."""
        return cls.signal_kind

    def fit_preprocessor(self, train: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """Fit the run's preprocessor (if any) on the training signals ``train``; returns its
        transform (the identity without a preprocessor)."""
        if self.preprocessor is None:
            return lambda t: t
        self.preprocessor.fit(train)
        return self.preprocessor.transform

    # Default loaders over ``self.splits`` (a dict of map-style datasets set in ``setup``).
    # Training order depends only on (seed, epoch), so a resumed run sees the same batches.
    def _split_loader(self, split: str, shuffle: bool) -> DataLoader[Any]:
        data = self.splits[split]
        sampler = EpochShuffleSampler(len(data), self.seed) if shuffle else None
        return DataLoader(data, batch_size=self.config.batch_size, sampler=sampler)

    def train_dataloader(self) -> DataLoader[Any]:
        return self._split_loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return self._split_loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader[Any]:
        return self._split_loader("test", shuffle=False)
