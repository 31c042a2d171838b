"""Group Lasso (ℓ1,2): consecutive groups of ``group_size`` signals, jointly sparse codes.

min_A ½‖X − A Dᵀ‖²_F + λ Σ_j ‖A_{:,j}‖₂ per group (X: the group's g signals as rows), solved
by FISTA with the group soft threshold (plugins/pursuit/group_coding.py). With
``group_size=1`` it is the Lasso. ``lam`` is on the scale of the summed (not averaged) error:
scikit-learn's MultiTaskLasso with alpha solves the same problem for λ = alpha · m.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sparseland import option, register_pursuit
from sparseland.errors import check
from sparseland.interfaces import Pursuit, PursuitConfig, PursuitInfo
from sparseland.interfaces.pursuit import warn_not_converged
from sparseland.operators import LinearOperator
from sparseland.plugins.pursuit._torch import as_torch, back, dense_matrix
from sparseland.plugins.pursuit.group_coding import as_groups, group_lasso


@dataclass
class GroupLassoConfig(PursuitConfig):
    group_size: int = option(1, "signals per group (consecutive rows)")
    lam: float = option(0.1, "λ, the weight of the ℓ1,2 penalty Σ_j ‖A_{:,j}‖₂")
    max_iter: int = option(500, "FISTA iterations at most")
    tol: float = option(1e-6, "stop when every group's relative change ‖A_k − A_{k−1}‖/‖A_k‖ < tol")

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.group_size >= 1, "group_size", f"must be >= 1, got {self.group_size}")
        check(self.lam >= 0, "lam", f"must be >= 0, got {self.lam}", "λ weighs the ℓ1,2 penalty")
        check(self.max_iter >= 1, "max_iter", f"must be >= 1, got {self.max_iter}")
        check(self.tol >= 0, "tol", f"must be >= 0, got {self.tol}")


@register_pursuit("group_lasso", config=GroupLassoConfig)
class GroupLasso(Pursuit):
    needs_matrix = True

    def solve(self, x: Any, op: LinearOperator, init: Any | None) -> Any:
        cfg: GroupLassoConfig = self.config  # type: ignore[assignment]
        xt, backend = as_torch(x)
        dictionary = dense_matrix(op, xt)
        groups = as_groups(xt, cfg.group_size)
        start = None if init is None else as_groups(as_torch(init)[0], cfg.group_size)
        codes, iterations = group_lasso(
            groups, dictionary, cfg.lam, cfg.max_iter, cfg.tol, init=start
        )
        if iterations >= cfg.max_iter:
            warn_not_converged(
                "group_lasso", groups.shape[0], groups.shape[0], cfg.max_iter, cfg.tol
            )
        self.info = PursuitInfo(iterations=iterations)
        return back(codes.reshape(xt.shape[0], -1), backend)
