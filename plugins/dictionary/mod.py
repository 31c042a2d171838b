"""Method of optimal directions (Engan, Aase and Husøy 1999).

With the codes H of the whole training set fixed, D = argmin ‖X − D H‖²_F = X Hᵀ (H Hᵀ)⁻¹
= B A⁻¹ (A = Σ h hᵀ, B = Σ x hᵀ). We solve D (A + εI) = B with ε = ``ridge`` · tr(A)/k so
that an atom no signal uses gives a zero column instead of a singular system, then scale the
columns to unit norm (the codes absorb the scale at the next pursuit) and replace unused or
duplicated atoms. A and B are sums, so they all-reduce across processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparseland import option, register_learner
from sparseland.errors import check
from sparseland.interfaces.learner import Tensors
from sparseland.plugins.dictionary.atom_updates import (
    GramStatistics,
    duplicate_atoms,
    normalize_columns_,
    replace_atoms,
    unused_atoms,
)
from sparseland.plugins.dictionary.batch_learner import BatchLearner
from sparseland.plugins.dictionary.replacement_config import AtomReplacementConfig


@dataclass
class ModConfig(AtomReplacementConfig):
    ridge: float = option(1e-6, "ε = ridge · tr(A)/k added to the diagonal of A")

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.ridge >= 0, "ridge", f"must be >= 0, got {self.ridge}")


def mod_step(A: torch.Tensor, B: torch.Tensor, ridge: float) -> torch.Tensor:
    """D = B (A + εI)⁻¹, columns not yet normalised (A is symmetric positive semi-definite)."""
    k = A.shape[0]
    eps = ridge * float(torch.diagonal(A).sum()) / k
    regularised = A.double() + max(eps, 1e-12) * torch.eye(k, dtype=torch.float64, device=A.device)
    chol = torch.linalg.cholesky(regularised)
    # D Â = B  ⇔  Â Dᵀ = Bᵀ (Â symmetric)
    return torch.cholesky_solve(B.double().T, chol).T.to(B.dtype)


@register_learner("mod", config=ModConfig)
class ModLearner(GramStatistics, BatchLearner):
    def update(self, dictionary: torch.Tensor, state: Tensors, stats: Tensors) -> None:
        A = stats["A"]
        new = mod_step(A, stats["B"], self.config.ridge)
        dead = new.norm(dim=0) <= 1e-12
        new[:, dead] = dictionary[:, dead]  # keep a valid atom until it is replaced
        dictionary.copy_(new)
        normalize_columns_(dictionary)
        if self.config.replace_unused:
            replace = unused_atoms(A, self.config.unused_threshold) | dead
            replace |= duplicate_atoms(dictionary, self.config.max_coherence)
            replace_atoms(
                dictionary, replace, stats["gather_candidates"], stats["gather_residuals"]
            )
