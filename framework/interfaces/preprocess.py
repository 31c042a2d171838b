"""Preprocessor: fitted on training signals, then applied to every split and inverted."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import torch

from sparseland.interfaces.plugin import Plugin


class Preprocessor(Plugin[Any]):
    """Signals are rows ``(n, d)``. Fitted state lives in ``self.state`` (tensors only), so it
    is saved with the run as safetensors and loaded without unpickling anything.

    Capabilities (sparseland.interfaces.contracts) in ``provides``: ``Identity``,
    ``ScalePreserving``, ``Corruption``."""

    #: True for corruptions (noise, knock-out): applied to training inputs only.
    corrupts: ClassVar[bool] = False

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.state: dict[str, torch.Tensor] = {}

    def fit(self, x: torch.Tensor) -> Preprocessor:
        return self

    @abstractmethod
    def transform(self, x: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def inverse_transform(self, y: torch.Tensor, raw: torch.Tensor | None = None) -> torch.Tensor:
        """Undo :meth:`transform`. Per-signal steps (DC removal) need the ``raw`` signals."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.state.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.state = dict(state)
