"""FISTA: ISTA with Nesterov momentum (Beck and Teboulle 2009), optional adaptive restart."""

from __future__ import annotations

from dataclasses import dataclass

from sparseland import option, register_pursuit
from sparseland.plugins.pursuit.proximal_gradient import (
    ProximalGradientConfig,
    ProximalGradientPursuit,
)


@dataclass
class FistaConfig(ProximalGradientConfig):
    restart: bool = option(False, "adaptive restart of the momentum when the objective goes up")


@register_pursuit("fista", config=FistaConfig)
class Fista(ProximalGradientPursuit):
    accelerate = True

    @property
    def restart(self) -> bool:  # type: ignore[override]
        config: FistaConfig = self.config  # type: ignore[assignment]
        return config.restart
