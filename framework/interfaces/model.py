"""Models are LightningModules built from their config and the other plugins of the run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import lightning as L
import torch

from sparseland.interfaces.dataset import SparselandDataModule
from sparseland.interfaces.learner import DictionaryLearner
from sparseland.interfaces.pursuit import Pursuit


@dataclass
class ModelContext:
    """What a model may use besides its own config."""

    datamodule: SparselandDataModule
    pursuit: Pursuit | None = None
    learner: DictionaryLearner | None = None


class SparselandModule(L.LightningModule):
    """Base of every model. Small hooks that tasks rely on; models fill in what applies.

    The hooks beyond these (``denoise_image``, ``classify``, ``D``...) are capabilities
    (sparseland.interfaces.contracts): a model lists those it implements in ``provides``.
    """

    #: The capabilities this model provides (e.g. ``(Denoiser, WithDictionary)``).
    provides: ClassVar[tuple[type, ...]] = ()

    @classmethod
    def capabilities(cls, config: Any = None) -> frozenset[type]:
        """What a model with ``config`` provides (``provides``, unless the config matters)."""
        return frozenset(cls.provides)

    @staticmethod
    def check_compatible(spec: Any) -> None:
        """Refuse (ConfigError) a run whose other plugins cannot work with this model; ``spec``
        is the validated run (sparseland.spec.RunSpec). The task's needs are checked already."""

    def __init__(self, config: Any, context: ModelContext) -> None:
        super().__init__()
        self.config = config
        self.context = context

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no encoder")

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no decoder")

    def objective(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Per-signal value of the model's objective, shape (n,)."""
        raise NotImplementedError(f"{type(self).__name__} has no sparse-coding objective")

    def atoms(self) -> torch.Tensor | None:
        """Atoms or filters as images (k, h, w) for the atoms PNG; None when not applicable."""
        return None
