"""Batched orthogonal matching pursuit, sparsity- or error-constrained (Pati et al. 1993).

A minimal stand-in used by patch denoising when the ``omp`` pursuit plugin is not available
(see plugins/models/patch_denoising.py). Every signal selects the atom of largest
|correlation| with its residual, then refits its coefficients by least squares on the
support. The inverse of the support Gram G_SS is grown by one row and column per step with
the Schur complement (as Batch-OMP grows a Cholesky factor, Rubinstein et al. 2008):
    G⁻¹_new = [[G⁻¹ + u uᵀ/s, −u/s], [−uᵀ/s, 1/s]],  u = G⁻¹ b,  s = G_jj − bᵀu,
so each step is a few batched matrix products. Signals stop when ‖x − D_S γ‖₂ ≤ ``eps``
(error-constrained) or after ``n_nonzero`` atoms; finished signals leave the batch.
No Python loop over signals.
"""

from __future__ import annotations

import torch

CHUNK = 16384


def batch_omp(
    x: torch.Tensor, D: torch.Tensor, n_nonzero: int | None = None, eps: float | None = None
) -> torch.Tensor:
    """Codes (n, k) of the rows of ``x`` (n, m) over the unit-norm columns of ``D`` (m, k)."""
    if n_nonzero is None and eps is None:
        raise ValueError("batch_omp needs n_nonzero or eps")
    out = [_omp_chunk(c, D, n_nonzero, eps) for c in x.split(CHUNK)]
    return torch.cat(out) if out else x.new_zeros(0, D.shape[1])


def _omp_chunk(
    x: torch.Tensor, D: torch.Tensor, n_nonzero: int | None, eps: float | None
) -> torch.Tensor:
    n, m = x.shape
    k = D.shape[1]
    D = D.to(x.dtype)
    T = min(n_nonzero if n_nonzero is not None else m, m, k)
    gram = D.T @ D
    norm2 = (x * x).sum(dim=1)
    support = torch.zeros(n, T, dtype=torch.long, device=x.device)
    coef = torch.zeros(n, T, dtype=x.dtype, device=x.device)
    keep = torch.ones(n, dtype=torch.bool, device=x.device)
    if eps is not None:
        keep = norm2 > eps * eps
    active = keep.nonzero().squeeze(1)
    xa, alpha = x[active], x[active] @ D  # signals still coding; their Dᵀx
    inv = x.new_zeros(active.numel(), 0, 0)  # (G_SS)⁻¹ per active signal
    sel = support[active, :0]
    for t in range(T):
        if active.numel() == 0:
            break
        gamma = coef[active, :t]
        residual = xa - torch.einsum("nt,ntm->nm", gamma, D.T[sel]) if t else xa
        corr = (residual @ D).abs()
        corr.scatter_(1, sel, -1.0)  # never pick an atom twice
        j = corr.argmax(dim=1)
        b = gram[sel, j[:, None]] if t else x.new_zeros(active.numel(), 0)  # G_{S,j}
        u = torch.einsum("nst,nt->ns", inv, b)
        s = (gram[j, j] - (b * u).sum(dim=1)).clamp_min(1e-10)
        top = inv + u[:, :, None] * u[:, None, :] / s[:, None, None]
        inv = torch.cat(
            [
                torch.cat([top, -u[:, :, None] / s[:, None, None]], dim=2),
                torch.cat([-u[:, None, :] / s[:, None, None], 1.0 / s[:, None, None]], dim=2),
            ],
            dim=1,
        )
        sel = torch.cat([sel, j[:, None]], dim=1)
        rhs = alpha.gather(1, sel)
        gamma = torch.einsum("nst,nt->ns", inv, rhs)
        support[active, t] = j
        coef[active, : t + 1] = gamma
        if eps is not None:  # ‖x − D_S γ‖² = ‖x‖² − γᵀ D_Sᵀx at the least-squares solution
            going = norm2[active] - (rhs * gamma).sum(dim=1) > eps * eps
            active, xa, alpha = active[going], xa[going], alpha[going]
            inv, sel = inv[going], sel[going]
    codes = torch.zeros(n, k, dtype=x.dtype, device=x.device)
    return codes.scatter_add_(1, support, coef)
