"""Online dictionary learning (Mairal, Bach, Ponce and Sapiro 2009, Algorithms 1 and 2).

Running statistics over mini-batches, with a forgetting factor β_t = (1 − 1/t)^ρ:
    A_t = β_t A_{t−1} + (1/n) Σ h hᵀ,   B_t = β_t B_{t−1} + (1/n) Σ x hᵀ.
Then block-coordinate descent on the columns (their Algorithm 2):
    u_j = (b_j − D a_j) / A_jj + d_j,   d_j = u_j / ‖u_j‖.
(Mairal et al. project onto the unit ball; we keep atoms on the sphere, as the model
requires unit-norm atoms.) Atoms with no energy in A (or, optionally, near-duplicates of
another atom) are replaced by the worst-coded signals of the batch; the candidates are
gathered from every DDP process and ranked by residual, so all processes agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from framework import PluginConfig, register_learner
from framework.errors import check
from framework.interfaces import DictionaryLearner
from plugins.dictionary.atom_updates import (
    bcd_columns,
    duplicate_atoms,
    gram_statistics,
    replace_atoms,
    unused_atoms,
)

__all__ = ["OnlineConfig", "OnlineLearner", "bcd_columns"]


@dataclass
class OnlineConfig(PluginConfig):
    forget_rho: float = 1.0  # ρ in β_t = (1 − 1/t)^ρ; larger forgets the first batches faster
    n_sweeps: int = 1  # BCD passes over the columns per mini-batch
    replace_unused: bool = True
    unused_threshold: float = 1e-6  # A_jj below this × mean(diag A): the atom is unused
    max_coherence: float = 0.99  # also replace atoms with |d_iᵀd_j| above this (1: never)

    def __post_init__(self) -> None:
        check(self.forget_rho >= 0, "forget_rho", f"must be >= 0, got {self.forget_rho}")
        check(self.n_sweeps >= 1, "n_sweeps", f"must be >= 1, got {self.n_sweeps}")
        check(
            0 < self.max_coherence <= 1,
            "max_coherence",
            f"must be in (0, 1], got {self.max_coherence}",
        )


@register_learner("online", config=OnlineConfig)
class OnlineLearner(DictionaryLearner):
    def init_state(self, dictionary: torch.Tensor) -> dict[str, torch.Tensor]:
        m, k = dictionary.shape
        return {
            "A": torch.zeros(k, k, dtype=dictionary.dtype),
            "B": torch.zeros(m, k, dtype=dictionary.dtype),
            "t": torch.zeros((), dtype=torch.long),
        }

    def statistics(
        self, x: torch.Tensor, codes: torch.Tensor, dictionary: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        return gram_statistics(x, codes, dictionary)

    def update(
        self,
        dictionary: torch.Tensor,
        state: dict[str, torch.Tensor],
        stats: dict[str, torch.Tensor],
    ) -> None:
        state["t"] += 1
        t = float(state["t"])
        beta = (1.0 - 1.0 / t) ** self.config.forget_rho
        n = stats["n"].clamp_min(1.0)
        A, B = state["A"], state["B"]
        A.mul_(beta).add_(stats["A"] / n)
        B.mul_(beta).add_(stats["B"] / n)
        bcd_columns(dictionary, A, B, self.config.n_sweeps)
        if self.config.replace_unused and t > 1:
            replace = unused_atoms(A, self.config.unused_threshold)
            replace |= duplicate_atoms(dictionary, self.config.max_coherence)
            idx = replace_atoms(
                dictionary, replace, stats["gather_candidates"], stats["gather_residuals"]
            )
            A[idx, :] = 0.0  # a new atom starts with no history
            A[:, idx] = 0.0
            B[:, idx] = 0.0
