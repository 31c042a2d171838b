"""The identity preprocessor."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparseland import PluginConfig, register_preprocessor
from sparseland.interfaces import Preprocessor, contracts


@dataclass
class NoneConfig(PluginConfig):
    pass


@register_preprocessor("none", config=NoneConfig)
class Identity(Preprocessor):
    provides = (contracts.Identity, contracts.ScalePreserving)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def inverse_transform(self, y: torch.Tensor, raw: torch.Tensor | None = None) -> torch.Tensor:
        return y
