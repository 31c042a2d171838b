"""Simultaneous OMP (ℓ0,∞): consecutive groups of ``group_size`` signals share one support.

``codes = somp(x, D)`` with x (n, m), n a multiple of ``group_size``; rows g·i … g·i + g − 1
form group i. The algorithm is plugins/pursuit/group_coding.py's ``simultaneous_omp``; with
``group_size=1`` it is plain OMP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sparseland import option, register_pursuit
from sparseland.errors import check
from sparseland.interfaces import Pursuit, PursuitConfig, PursuitInfo
from sparseland.operators import LinearOperator
from sparseland.plugins.pursuit._torch import as_torch, back, dense_matrix
from sparseland.plugins.pursuit.group_coding import as_groups, simultaneous_omp


@dataclass
class SompConfig(PursuitConfig):
    group_size: int = option(1, "signals per group (consecutive rows)")
    k: int | None = option(8, "at most k atoms per group (None: up to min(m, n_atoms))")
    eps: float | None = option(
        None, "stop a group once ‖X − A Dᵀ‖²_F ≤ eps (summed over its signals)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.group_size >= 1, "group_size", f"must be >= 1, got {self.group_size}")
        check(self.k is None or self.k >= 1, "k", f"must be >= 1, got {self.k}")
        check(self.eps is None or self.eps >= 0, "eps", f"must be >= 0, got {self.eps}")
        check(
            self.k is not None or self.eps is not None,
            "k",
            "k and eps are both unset",
            "set a sparsity target k, an error target eps, or both",
        )


@register_pursuit("somp", config=SompConfig)
class Somp(Pursuit):
    needs_matrix = True

    def solve(self, x: Any, op: LinearOperator, init: Any | None) -> Any:
        cfg: SompConfig = self.config  # type: ignore[assignment]
        xt, backend = as_torch(x)
        dictionary = dense_matrix(op, xt)
        m, n_atoms = dictionary.shape
        k = min(cfg.k if cfg.k is not None else m, m, n_atoms)
        groups = as_groups(xt, cfg.group_size)
        codes, count = simultaneous_omp(groups, dictionary, k, cfg.eps)
        flat = codes.reshape(xt.shape[0], n_atoms)
        residual = (xt - flat @ dictionary.T).norm(dim=1)
        rel = float((residual / xt.norm(dim=1).clamp_min(1e-30)).mean())
        self.info = PursuitInfo(iterations=int(count.max()) if count.numel() else 0, rel_change=rel)
        return back(flat, backend)
