"""Projected (stochastic) gradient descent on the dictionary (Olshausen and Field 1996;
the dictionary step in Salakhutdinov's sparse-coding lecture).

Per mini-batch with codes fixed, the gradient of f(D) = (1/2n) Σ ‖x − D h‖² is
    ∇f = (D A − B)/n,   A = Σ h hᵀ,  B = Σ x hᵀ,
and the step is D ← Π(D − η ∇f), Π scaling every column to unit norm. With
``scale_by_lipschitz`` the step is η = ``lr`` / ‖A/n‖₂ (‖A/n‖₂ is the Lipschitz constant of
∇f, so lr < 2 decreases f before the projection); otherwise η = ``lr``. Atoms whose running
energy (an average of diag(A)/n over batches) falls below ``unused_threshold`` × its mean are
replaced by the worst-coded signals of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparseland import PluginConfig, option, register_learner
from sparseland.errors import check
from sparseland.interfaces import DictionaryLearner
from sparseland.interfaces.learner import Tensors
from sparseland.plugins.dictionary.atom_updates import (
    GramStatistics,
    normalize_columns_,
    replace_atoms,
)


@dataclass
class GradientConfig(PluginConfig):
    lr: float = option(1.0, "step size of the projected gradient step on D")
    scale_by_lipschitz: bool = option(
        True, "step η = lr / ‖A/n‖₂ (the Lipschitz constant of the gradient) instead of lr"
    )
    replace_unused: bool = option(
        True, "replace atoms whose running energy falls below unused_threshold × its mean"
    )
    unused_threshold: float = option(
        1e-3, "running energy below this × the mean: the atom is unused"
    )
    energy_decay: float = option(0.99, "running average of each atom's energy diag(A)/n")

    def __post_init__(self) -> None:
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(
            0 <= self.energy_decay < 1,
            "energy_decay",
            f"must be in [0, 1), got {self.energy_decay}",
        )


@register_learner("gradient", config=GradientConfig)
class GradientLearner(GramStatistics, DictionaryLearner):
    def init_state(self, dictionary: torch.Tensor) -> Tensors:
        k = dictionary.shape[1]
        return {
            "energy": torch.zeros(k, dtype=dictionary.dtype),
            "t": torch.zeros((), dtype=torch.long),
        }

    def update(self, dictionary: torch.Tensor, state: Tensors, stats: Tensors) -> None:
        n = stats["n"].clamp_min(1.0)
        A, B = stats["A"] / n, stats["B"] / n
        step = self.config.lr
        if self.config.scale_by_lipschitz:
            step /= max(float(torch.linalg.eigvalsh(A.double())[-1]), 1e-12)
        dictionary.sub_(step * (dictionary @ A - B))
        normalize_columns_(dictionary)
        state["t"] += 1
        energy = state["energy"]
        decay = self.config.energy_decay if int(state["t"]) > 1 else 0.0
        energy.mul_(decay).add_((1 - decay) * torch.diagonal(A))
        if self.config.replace_unused and int(state["t"]) > 1:
            replace = energy <= self.config.unused_threshold * energy.mean().clamp_min(1e-30)
            idx = replace_atoms(
                dictionary, replace, stats["gather_candidates"], stats["gather_residuals"]
            )
            energy[idx] = energy.mean()
