"""Coordinate descent for the Lasso: "update the most promising unit" (Gregor and LeCun 2010).

Algorithm 2 of the paper (CoD).

min_h ½‖x − D h‖² + λ‖h‖₁ (optionally h ≥ 0). With c = Dᵀx and G = DᵀD, keep
B = c − (G − diag G) h, the correlations without each atom's own contribution. The exact minimiser
of coordinate j with the others fixed is h̄_j = S_λ(B_j)/G_jj. Each step every signal updates only
the coordinate j = argmax |h̄_j − h_j| that moves most, and B ← B − (h̄_j − h_j)(G_{:,j} − G_jj e_j),
so a step costs O(n_atoms) per signal instead of O(n_atoms²). (Gregor and LeCun assume unit atoms,
G_jj = 1; dividing by G_jj is the general form.) Batched: one coordinate per signal per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from sparseland import option, register_pursuit
from sparseland.interfaces import PursuitInfo
from sparseland.operators import LinearOperator, MatrixOperator
from sparseland.plugins.pursuit._torch import as_torch, back, dense_matrix
from sparseland.plugins.pursuit.proximal_gradient import (
    LassoPursuit,
    LassoPursuitConfig,
    converged_fraction,
    report_convergence,
)
from sparseland.problems import soft_threshold


@dataclass
class CodConfig(LassoPursuitConfig):
    max_iter: int = option(5000, "single-coordinate updates per signal")
    tol: float = option(1e-6, "stop when every signal's largest pending move |h̄_j − h_j| < tol·‖h‖")


@register_pursuit("cod", config=CodConfig)
class Cod(LassoPursuit):
    needs_matrix = True

    def solve(self, x: Any, op: LinearOperator, init: Any | None) -> Any:
        cfg: CodConfig = self.config  # type: ignore[assignment]
        problem = self.problem
        xt, backend = as_torch(x)
        dictionary = dense_matrix(op, xt)
        gram = dictionary.T @ dictionary
        diag = torch.diagonal(gram).clone()
        # a zero atom (G_jj = 0) has B_j = 0 and stays at h_j = 0: divide by 1, not 0
        safe_diag = torch.where(diag > 0, diag, torch.ones_like(diag))
        h = torch.zeros(xt.shape[0], gram.shape[0], dtype=xt.dtype, device=xt.device)
        if init is not None:
            h = as_torch(init)[0].to(xt.dtype).clone()
        correlation = xt @ dictionary
        # signals whose codes are zero at the optimum are done at once (no test divides by ‖h‖)
        done = problem.zero_is_optimal(correlation)
        if bool(done.all()):
            self.info = PursuitInfo(0, 0.0, 0.0, converged_fraction=1.0, max_gap=0.0)
            return back(torch.zeros_like(h), backend)
        b = correlation - h @ gram + h * diag
        rows = torch.arange(xt.shape[0], device=xt.device)
        rel, it, stalled = math.inf, 0, xt.shape[0]
        for it in range(1, cfg.max_iter + 1):
            target = soft_threshold(b, problem.lam, problem.positive) / safe_diag
            move = target - h
            j = move.abs().argmax(dim=1)
            delta = move[rows, j]
            b -= delta[:, None] * gram[j]
            b[rows, j] += delta * diag[j]
            h[rows, j] += delta
            if it % cfg.check_every == 0 or it == cfg.max_iter:
                scale = h.norm(dim=1).clamp_min(torch.finfo(h.dtype).tiny)
                change = (delta.abs() / scale).masked_fill_(done, 0.0)
                rel = float(change.max())
                stalled = int((change >= cfg.tol).sum())
                if rel < cfg.tol:
                    break
        report_convergence("cod", cfg, it, stalled, xt.shape[0])
        gap, worst = math.nan, rel
        if cfg.compute_gap:
            op_t = MatrixOperator(dictionary)
            gaps = problem.duality_gap(xt, op_t, h)
            gap, worst = float(gaps.mean()), float(gaps.max())
        self.info = PursuitInfo(
            iterations=it,
            rel_change=rel,
            duality_gap=gap,
            converged_fraction=converged_fraction(cfg, it, stalled, xt.shape[0]),
            max_gap=worst,
        )
        return back(h, backend)
