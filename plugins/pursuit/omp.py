"""Orthogonal matching pursuit (Pati, Rezaiifar and Krishnaprasad 1993), batched as Batch-OMP.

Batch-OMP (Rubinstein, Zibulevsky and Elad 2008, Algorithm 3) works from α⁰ = Dᵀx and G = DᵀD.
At step s each signal picks the atom j = argmax |α_j| most correlated with its residual and the
Cholesky factor of the Gram submatrix G_II grows by one row (progressive Cholesky, their eq. 4):
    w = L⁻¹ G_{I,j},   L ← [[L, 0], [wᵀ, √(G_jj − wᵀw)]].
We carry L⁻¹ instead of L (its new row is [−wᵀL⁻¹/d, 1/d]), so nothing is ever re-solved, and
z = L⁻¹ α⁰_I grows by z_s = α_j / d. The coefficients are γ_I = L⁻ᵀ z and the squared residual
is ‖x‖² − ‖z‖² (their ε update, eq. 7). The correlations are refreshed with the new orthonormal
direction q_s = (d_j − Σ_t w_t q_t)/d of span(D_I): α ← α − z_s Dᵀq_s, one dense GEMM per step.
Stopping, per signal: k atoms, or squared residual norm ≤ eps (whichever comes first).
The loop runs over the k selection steps only; every step is batched over all signals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from framework import register_pursuit
from framework.errors import ConfigError, check
from framework.interfaces import Pursuit, PursuitConfig, PursuitInfo
from framework.operators import LinearOperator
from plugins.pursuit._torch import as_torch, back, dense_matrix


@dataclass
class OmpConfig(PursuitConfig):
    k: int | None = 8  # sparsity target: at most k atoms per signal (None: up to min(m, n_atoms))
    eps: float | None = None  # error target: stop a signal once ‖x − D h‖² ≤ eps

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.k is None or self.k >= 1, "k", f"must be >= 1, got {self.k}")
        check(self.eps is None or self.eps >= 0, "eps", f"must be >= 0, got {self.eps}")
        check(
            self.k is not None or self.eps is not None,
            "k",
            "k and eps are both unset",
            "set a sparsity target k, an error target eps, or both",
        )


def batch_omp(
    x: torch.Tensor, dictionary: torch.Tensor, k: int, eps: float | None
) -> tuple[torch.Tensor, int]:
    """Codes (n × n_atoms) with at most ``k`` non-zeros each, and the number of steps run."""
    n, n_atoms = x.shape[0], dictionary.shape[1]
    dtype, device = x.dtype, x.device
    gram = dictionary.T @ dictionary
    atoms = dictionary.T.contiguous()  # n_atoms × m, row j is atom j
    alpha0 = x @ dictionary
    alpha = alpha0.clone()
    tiny = torch.finfo(dtype).tiny
    support = torch.zeros(n, k, dtype=torch.long, device=device)
    inv_chol = torch.zeros(n, k, k, dtype=dtype, device=device)  # L⁻¹ (lower triangular)
    z = torch.zeros(n, k, dtype=dtype, device=device)
    basis = torch.zeros(n, k, x.shape[1], dtype=dtype, device=device)  # orthonormal q_t
    error = (x * x).sum(dim=1)  # ‖residual‖²
    count = torch.zeros(n, dtype=torch.long, device=device)  # atoms chosen per signal
    running = torch.ones(n, dtype=torch.bool, device=device)
    if eps is not None:
        running &= error > eps
    steps = 0
    for s in range(k):
        if not bool(running.any()):
            break
        steps = s + 1
        # Chosen atoms are orthogonal to the residual; their α is zeroed after each update, so
        # argmax |α| never picks one again.
        best, j = alpha.abs().max(dim=1)
        if s > 0:
            g = gram[support[:, :s], j[:, None]]  # G_{I,j}, n × s
            w = torch.bmm(inv_chol[:, :s, :s], g[:, :, None])[:, :, 0]  # L⁻¹ G_{I,j}
        else:
            w = torch.zeros(n, 0, dtype=dtype, device=device)
        d2 = gram[j, j] - (w * w).sum(dim=1)
        # A signal stops when its residual is orthogonal to every atom or the new atom
        # depends linearly on the chosen ones (as scikit-learn's orthogonal_mp_gram does).
        running &= (best * best > tiny) & (d2 > tiny)
        d = torch.sqrt(torch.clamp(d2, min=tiny))
        every = bool(running.all())  # the common case: no masking needed
        new_row = torch.bmm(w[:, None, :], inv_chol[:, :s, :s])[:, 0].div_(-d[:, None])
        q = (atoms[j] - torch.bmm(w[:, None, :], basis[:, :s])[:, 0]).div_(d[:, None])
        zs = alpha.gather(1, j[:, None])[:, 0] / d
        if every:
            support[:, s] = j
            inv_chol[:, s, :s] = new_row
            inv_chol[:, s, s] = 1.0 / d
            basis[:, s] = q
        else:
            keep = running[:, None]
            support[:, s] = torch.where(running, j, support[:, s])
            inv_chol[:, s, :s] = torch.where(keep, new_row, inv_chol[:, s, :s])
            inv_chol[:, s, s] = torch.where(running, 1.0 / d, inv_chol[:, s, s])
            basis[:, s] = torch.where(keep, q, basis[:, s])
            zs = torch.where(running, zs, torch.zeros_like(zs))
        z[:, s] = zs
        alpha.addmm_(q * (-zs[:, None]), dictionary)  # α − z_s Dᵀq_s, one GEMM
        alpha.scatter_(1, support[:, : s + 1], 0.0)
        error = error - zs * zs
        count += running.long()
        if eps is not None:
            running &= error > eps
    gamma = (inv_chol * z[:, :, None]).sum(dim=1)  # γ = L⁻ᵀ z
    valid = torch.arange(k, device=device)[None, :] < count[:, None]
    codes = torch.zeros(n, n_atoms, dtype=dtype, device=device)
    codes.scatter_add_(1, support, torch.where(valid, gamma, torch.zeros_like(gamma)))
    return codes, steps


@register_pursuit("omp", config=OmpConfig)
class Omp(Pursuit):
    needs_matrix = True

    def solve(self, x: Any, op: LinearOperator, init: Any | None) -> Any:
        cfg: OmpConfig = self.config  # type: ignore[assignment]
        xt, backend = as_torch(x)
        dictionary = dense_matrix(op, xt)
        m, n_atoms = dictionary.shape
        k = cfg.k if cfg.k is not None else min(m, n_atoms)
        if k > n_atoms:
            raise ConfigError(
                "k", f"{k} atoms asked of a dictionary of {n_atoms} atoms", f"use k <= {n_atoms}"
            )
        codes, steps = batch_omp(xt, dictionary, k, cfg.eps)
        residual = xt - codes @ dictionary.T
        rel = float((residual.norm(dim=1) / xt.norm(dim=1).clamp_min(1e-30)).mean())
        # For OMP, rel_change reports the mean relative residual ‖x − Dh‖/‖x‖.
        self.info = PursuitInfo(iterations=steps, rel_change=rel)
        return back(codes, backend)
