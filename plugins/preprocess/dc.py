"""DC removal: subtract each signal's mean (the flat "DC" atom carries no structure)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparseland import PluginConfig, register_preprocessor
from sparseland.interfaces import Preprocessor, contracts


@dataclass
class DcConfig(PluginConfig):
    pass


@register_preprocessor("dc", config=DcConfig)
class RemoveDC(Preprocessor):
    provides = (contracts.ScalePreserving,)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(dim=1, keepdim=True)

    def inverse_transform(self, y: torch.Tensor, raw: torch.Tensor | None = None) -> torch.Tensor:
        return y if raw is None else y + raw.mean(dim=1, keepdim=True)
