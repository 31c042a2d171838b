"""ISTA: iterative shrinkage-thresholding (proximal gradient) for the Lasso."""

from __future__ import annotations

from dataclasses import dataclass

from sparseland import option, register_pursuit
from sparseland.plugins.pursuit.proximal_gradient import (
    ProximalGradientConfig,
    ProximalGradientPursuit,
)


@dataclass
class IstaConfig(ProximalGradientConfig):
    max_iter: int = option(500, "iterations per signal")


@register_pursuit("ista", config=IstaConfig)
class Ista(ProximalGradientPursuit):
    accelerate = False
