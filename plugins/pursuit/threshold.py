"""Thresholding: the simplest pursuit, one step on the correlations c = Dᵀx (Elad 2010, §5.1).

soft: h = S_λ(c) = sign(c)·max(|c| − λ, 0) (with positive=True: max(c − λ, 0), a ReLU with bias −λ;
      this is the forward pass of one layer of a CNN, Papyan, Romano and Elad 2017);
hard: h = c·1[|c| > λ], or with k > 0 the k largest |c_j| of each signal are kept (top-k).
Written once against the array namespace, batched over signals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sparseland import option, register_pursuit
from sparseland.errors import check
from sparseland.interfaces import Pursuit, PursuitConfig, PursuitInfo
from sparseland.operators import LinearOperator
from sparseland.plugins.pursuit._torch import as_torch, back
from sparseland.problems import L0, L0Penalty, Lasso, Problem


@dataclass
class ThresholdConfig(PursuitConfig):
    mode: str = option("soft", "soft or hard thresholding of Dᵀx")
    lam: float = option(0.1, "threshold λ (soft, and hard when k == 0)")
    k: int = option(0, "hard mode only: keep the k largest |Dᵀx| per signal (0: threshold at λ)")
    positive: bool = option(False, "keep only positive correlations")

    def __post_init__(self) -> None:
        super().__post_init__()
        check(
            self.mode in ("soft", "hard"),
            "mode",
            f"'{self.mode}' is not a mode",
            "choose soft or hard",
        )
        check(self.lam >= 0, "lam", f"must be >= 0, got {self.lam}")
        check(self.k >= 0, "k", f"must be >= 0, got {self.k}", "0 thresholds at lam instead")
        check(
            self.k == 0 or self.mode == "hard", "k", "top-k needs mode=hard", "set mode=hard or k=0"
        )


@register_pursuit("threshold", config=ThresholdConfig)
class Threshold(Pursuit):
    """One step: the problem's threshold (its prox at step 1) applied to c = Dᵀx."""

    solves = (Lasso, L0, L0Penalty)

    @classmethod
    def problem_from(cls, config: Any) -> Problem:
        if config.mode == "soft":
            return Lasso(config.lam, config.positive)
        if config.k > 0:
            return L0(config.k, config.positive)
        return L0Penalty(config.lam, config.positive)

    def solve(self, x: Any, op: LinearOperator, init: Any | None) -> Any:
        c = op.adjoint(x)
        if isinstance(self.problem, L0):  # top-k runs in torch (topk, scatter)
            ct, backend = as_torch(c)
            codes = back(self.problem.prox(ct), backend)
        else:
            codes = self.problem.prox(c)
        self.info = PursuitInfo(iterations=1, rel_change=0.0, converged_fraction=1.0, max_gap=0.0)
        return codes
