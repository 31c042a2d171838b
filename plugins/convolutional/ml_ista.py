"""ML-ISTA and ML-FISTA (Sulam, Aberdam, Beck and Elad 2019) as plugins, with unfoldings.

The iteration is in plugins/convolutional/ml_pursuit.py (``ml_ista``). Without learned
thresholds the steps are s_i = c^{[i<L]} / Π_{j≤i}‖D_j‖² (c = ``smoothing``) and τ_i = s_i λ_i.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparseland import option, register_pursuit
from sparseland.errors import check
from sparseland.plugins.convolutional.layered import (
    MultiLayerPursuit,
    Steps,
    Taus,
    UnfoldedConfig,
)
from sparseland.plugins.convolutional.ml_pursuit import ml_ista
from sparseland.plugins.convolutional.multilayer import MultiLayerConvDictionary


@dataclass
class MLIstaConfig(UnfoldedConfig):
    smoothing: float = option(
        1.0, "c ∈ (0, 1]: inner steps c/‖D‖², the Moreau parameter μ of the paper"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check(0 < self.smoothing <= 1, "smoothing", f"must be in (0, 1], got {self.smoothing}")


class _MLIsta(MultiLayerPursuit):
    accelerate = False
    scaled_codes = True

    def iterations(self) -> int:
        return int(self.config.unfoldings)

    def smoothing(self) -> float:
        return float(self.config.smoothing)

    def layers(
        self, x: torch.Tensor, op: MultiLayerConvDictionary, taus: Taus = None, steps: Steps = None
    ) -> list[torch.Tensor]:
        steps, taus = self.steps_and_taus(op, taus, steps)
        return ml_ista(
            x, op, taus, steps, self.config.unfoldings, self.problem.positive, self.accelerate
        )


@register_pursuit("ml_ista", config=MLIstaConfig)
class MLIsta(_MLIsta):
    accelerate = False


@register_pursuit("ml_fista", config=MLIstaConfig)
class MLFista(_MLIsta):
    accelerate = True
