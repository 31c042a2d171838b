"""Batch block-coordinate descent (Mairal et al. 2009, Algorithm 2 on whole-epoch statistics).

With the codes of the whole training set fixed, the dictionary step minimises
    ½ Σ_t ‖x_t − D h_t‖² = ½ tr(Dᵀ D A) − tr(Dᵀ B) + const,   A = Σ h hᵀ,  B = Σ x hᵀ,
over unit-norm columns, one column at a time (exact on the sphere, see ``bcd_columns``), for
``n_sweeps`` passes. No learning rate. A and B are sums, so they all-reduce across processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparseland import option, register_learner
from sparseland.errors import check
from sparseland.interfaces.learner import Tensors
from sparseland.plugins.dictionary.atom_updates import (
    GramStatistics,
    bcd_columns,
    duplicate_atoms,
    replace_atoms,
    unused_atoms,
)
from sparseland.plugins.dictionary.batch_learner import BatchLearner
from sparseland.plugins.dictionary.replacement_config import AtomReplacementConfig


@dataclass
class BcdConfig(AtomReplacementConfig):
    n_sweeps: int = option(5, "passes over the columns per epoch")

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.n_sweeps >= 1, "n_sweeps", f"must be >= 1, got {self.n_sweeps}")


@register_learner("bcd", config=BcdConfig)
class BcdLearner(GramStatistics, BatchLearner):
    def update(self, dictionary: torch.Tensor, state: Tensors, stats: Tensors) -> None:
        A, B = stats["A"], stats["B"]
        bcd_columns(dictionary, A, B, self.config.n_sweeps)
        if self.config.replace_unused:
            replace = unused_atoms(A, self.config.unused_threshold)
            replace |= duplicate_atoms(dictionary, self.config.max_coherence)
            replace_atoms(
                dictionary, replace, stats["gather_candidates"], stats["gather_residuals"]
            )
