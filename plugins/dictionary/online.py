"""Online dictionary learning (Mairal, Bach, Ponce and Sapiro 2009, Algorithms 1 and 2).

Running statistics over mini-batches, with a forgetting factor β_t = (1 − 1/t)^ρ:
    A_t = β_t A_{t−1} + (1/n) Σ h hᵀ,   B_t = β_t B_{t−1} + (1/n) Σ x hᵀ.
Then block-coordinate descent on the columns (their Algorithm 2):
    u_j = (b_j − D a_j) / A_jj + d_j,   d_j = u_j / ‖u_j‖.
(Mairal et al. project onto the unit ball; we keep atoms on the sphere, as the model
requires unit-norm atoms.) Atoms with no energy in A are replaced by the worst-coded signals.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from framework import PluginConfig, register_learner
from framework.errors import check
from framework.interfaces import DictionaryLearner


@dataclass
class OnlineConfig(PluginConfig):
    forget_rho: float = 1.0  # ρ in β_t = (1 − 1/t)^ρ; larger forgets the first batches faster
    n_sweeps: int = 1  # BCD passes over the columns per mini-batch
    replace_unused: bool = True
    unused_threshold: float = 1e-6  # A_jj below this × mean(diag A): the atom is unused

    def __post_init__(self) -> None:
        check(self.forget_rho >= 0, "forget_rho", f"must be >= 0, got {self.forget_rho}")
        check(self.n_sweeps >= 1, "n_sweeps", f"must be >= 1, got {self.n_sweeps}")


def bcd_columns(D: torch.Tensor, A: torch.Tensor, B: torch.Tensor, sweeps: int) -> None:
    """Block-coordinate descent on min_D ½tr(Dᵀ D A) − tr(Dᵀ B), ‖d_j‖ = 1, in place."""
    diag = torch.diagonal(A)
    for _ in range(sweeps):
        for j in range(D.shape[1]):
            if diag[j] <= 0:
                continue
            u = D[:, j] + (B[:, j] - D @ A[:, j]) / diag[j]
            norm = u.norm()
            if norm > 0:
                D[:, j] = u / norm


def replace_unused(
    D: torch.Tensor, A: torch.Tensor, B: torch.Tensor, candidates: torch.Tensor, threshold: float
) -> int:
    """Swap unused atoms for the normalised worst-coded signals; returns how many."""
    diag = torch.diagonal(A)
    unused = (diag <= threshold * diag.mean().clamp_min(1e-30)).nonzero().squeeze(1)
    n = min(int(unused.numel()), int(candidates.shape[0]))
    if n == 0:
        return 0
    idx = unused[:n]
    new = candidates[:n].T
    D[:, idx] = new / new.norm(dim=0, keepdim=True).clamp_min(1e-12)
    A[idx, :] = 0.0
    A[:, idx] = 0.0
    B[:, idx] = 0.0
    return n


def worst_coded(x: torch.Tensor, codes: torch.Tensor, D: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` signals with the largest residual ‖x − D h‖ (candidates for new atoms)."""
    residual = (x - codes @ D.T).norm(dim=1)
    return x[residual.topk(min(k, x.shape[0])).indices]


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
        return {
            "A": codes.T @ codes,
            "B": x.T @ codes,
            "n": torch.tensor(float(x.shape[0]), device=x.device),
            "gather_candidates": worst_coded(x, codes, dictionary, 8),
        }

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
        state["A"].mul_(beta).add_(stats["A"] / n)
        state["B"].mul_(beta).add_(stats["B"] / n)
        bcd_columns(dictionary, state["A"], state["B"], self.config.n_sweeps)
        if self.config.replace_unused and t > 1:
            replace_unused(dictionary, state["A"], state["B"], stats["gather_candidates"],
                           self.config.unused_threshold)
