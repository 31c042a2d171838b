"""Datasets are LightningDataModules built from a config; they never download at run time.

Batches are dicts: ``x`` (the model's input, preprocessed), and where they apply ``raw``
(the signal before preprocessing), ``y`` (labels), ``clean`` (the target of a denoiser).
"""

from __future__ import annotations

from typing import Any

import lightning as L

from framework.interfaces.preprocess import Preprocessor


class SparselandDataModule(L.LightningDataModule):
    #: Whether batches carry labels ``y`` (a classification task checks this).
    has_labels: bool = False
    #: Whether the data are whole images (convolutional models) or vectors (patch models).
    signal_kind: str = "vector"

    def __init__(self, config: Any, preprocessor: Preprocessor | None = None) -> None:
        super().__init__()
        self.config = config
        self.preprocessor = preprocessor
        self.signal_shape: tuple[int, ...] = ()
        self.n_classes: int = 0

    @classmethod
    def signal_kind_of(cls, config: Any) -> str:
        """What a dataset with ``config`` yields ("vector" or "image"), known before building it."""
        return cls.signal_kind
