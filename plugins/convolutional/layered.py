"""ML-CSC pursuits as plugins: layered thresholding (the CNN forward pass) and layered BP.

The maths is in plugins/convolutional/ml_pursuit.py. Every ML-CSC pursuit exposes
``layers(x, op, taus=None, steps=None)`` (all layer estimates, differentiable) and
``default_steps(op)``; a model that learns its thresholds (biases) passes them as ``taus``,
with unit ``steps`` as in Sulam et al.'s unfolded networks or with the default (1/L) steps and
τ_i = s_i λ_i (model mlcsc, ``steps=lipschitz``); otherwise τ_i = s_i λ_i from the config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sparseland import option, register_pursuit
from sparseland.errors import ConfigError, check
from sparseland.interfaces import Pursuit, PursuitConfig, PursuitInfo
from sparseland.operators import LinearOperator
from sparseland.plugins.convolutional.ml_pursuit import (
    default_steps,
    layered_bp,
    layered_thresholding,
)
from sparseland.plugins.convolutional.multilayer import MultiLayerConvDictionary
from sparseland.problems import MultiLayerLasso

# The optional arguments of every multi-layer pursuit's ``layers``
Taus = Sequence[Any] | None
Steps = Sequence[float] | None


@dataclass
class MultiLayerPursuitConfig(PursuitConfig):
    lam: list[float] = option([0.1], "λ of each layer, or one for all")
    positive: bool = option(True, "non-negative codes: the threshold is a ReLU")

    def __post_init__(self) -> None:
        super().__post_init__()
        check(
            len(self.lam) >= 1 and all(v >= 0 for v in self.lam),
            "lam",
            f"must be non-negative values, got {self.lam}",
        )
        check(
            self.backend == "torch", "backend", "ML-CSC pursuits run on torch", "use backend=torch"
        )


@dataclass
class UnfoldedConfig(MultiLayerPursuitConfig):
    unfoldings: int = option(20, "iterations of the multi-layer pursuit")

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.unfoldings >= 0, "unfoldings", f"must be >= 0, got {self.unfoldings}")


class MultiLayerPursuit(Pursuit):
    """Base: ``solve`` returns the deepest code γ_L of the multi-layer basis pursuit."""

    config: Any
    problem: MultiLayerLasso
    solves = (MultiLayerLasso,)
    # True where the codes divided by the steps (γ_i / s_i) are CNN-scale activations: the
    # ML-ISTA family, whose first iteration is a CNN pass at any steps
    scaled_codes = False
    step_free = False

    @classmethod
    def problem_from(cls, config: Any) -> MultiLayerLasso:
        return MultiLayerLasso(tuple(config.lam), config.positive)

    def layers(
        self, x: torch.Tensor, op: MultiLayerConvDictionary, taus: Taus = None, steps: Steps = None
    ) -> list[torch.Tensor]:
        raise NotImplementedError

    def iterations(self) -> int:
        """The iterations of one call (``unfoldings`` for the iterative pursuits)."""
        return 1

    def smoothing(self) -> float:
        """The factor c of the inner steps (ML-ISTA's Moreau parameter); 1 elsewhere."""
        return 1.0

    def default_steps(self, op: MultiLayerConvDictionary) -> list[float]:
        """The steps this pursuit uses when none are given (1/L-type, from the weights)."""
        return default_steps(op, self.smoothing())

    def steps_and_taus(
        self,
        op: MultiLayerConvDictionary,
        taus: Sequence[Any] | None,
        steps: Sequence[float] | None,
    ) -> tuple[Sequence[float], Sequence[Any]]:
        """The given steps and thresholds, or the defaults: 1/L-type steps, τ_i = s_i λ_i."""
        steps = self.default_steps(op) if steps is None else steps
        return steps, self.config_taus(op, steps) if taus is None else taus

    def config_taus(self, op: MultiLayerConvDictionary, steps: Sequence[float]) -> list[float]:
        lams = self.problem.per_layer(op.n_layers)
        return [s * lam for s, lam in zip(steps, lams)]

    def solve(self, x: Any, op: LinearOperator, init: Any | None) -> Any:
        if not isinstance(op, MultiLayerConvDictionary):
            raise ConfigError(
                "pursuit",
                f"'{self.config.name}' is a multi-layer pursuit and "
                f"needs a multi-layer convolutional dictionary",
                "use it with model=mlcsc, or pursuit=fista for other dictionaries",
            )
        layers = self.layers(x, op)
        self.info = PursuitInfo(iterations=self.iterations())
        return layers[-1]


@register_pursuit("layered_thresholding", config=MultiLayerPursuitConfig)
class LayeredThresholding(MultiLayerPursuit):
    scaled_codes = True  # γ_i / s_i with the ML-ISTA steps is the CNN's layer i
    step_free = True  # … for any steps, so a model may as well pass unit steps

    def layers(
        self, x: torch.Tensor, op: MultiLayerConvDictionary, taus: Taus = None, steps: Steps = None
    ) -> list[torch.Tensor]:
        taus = self.problem.per_layer(op.n_layers) if taus is None else taus
        return layered_thresholding(x, op, taus, self.problem.positive, steps)


@dataclass
class LayeredBPConfig(UnfoldedConfig):
    accelerate: bool = option(True, "FISTA within each layer")


@register_pursuit("layered_bp", config=LayeredBPConfig)
class LayeredBasisPursuit(MultiLayerPursuit):
    def iterations(self) -> int:
        return int(self.config.unfoldings)

    def default_steps(self, op: MultiLayerConvDictionary) -> list[float]:
        """Each layer's own ISTA step 1/‖D_i‖²."""
        return [1.0 / op.layer_lipschitz(i) for i in range(1, op.n_layers + 1)]

    def layers(
        self, x: torch.Tensor, op: MultiLayerConvDictionary, taus: Taus = None, steps: Steps = None
    ) -> list[torch.Tensor]:
        steps, taus = self.steps_and_taus(op, taus, steps)
        return layered_bp(
            x,
            op,
            taus,
            steps,
            max(self.config.unfoldings, 1),
            self.problem.positive,
            self.config.accelerate,
        )
