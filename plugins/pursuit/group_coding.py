"""Group sparse coding: several signals that share one support, batched over groups.

A group is a (g × m) block X of g signals (rows); its codes are A (g × k) over a dictionary D
(m × k). Both solvers take a batch of groups X (G, g, m) and work from the Gram matrix
DᵀD (k × k) and the correlations Dᵀxᵢ; no Python loop runs over groups.

Simultaneous OMP (ℓ0,∞; Tropp, Gilbert and Strauss 2006): the support I grows by the atom whose
correlations with the group's residuals carry the most energy, argmax_j Σᵢ (d_jᵀ rᵢ)², and the
codes are the least-squares fit of every signal on D_I. A group stops at ``k`` atoms or when the
squared Frobenius norm of its residual ‖X − A D_Iᵀ‖²_F is ≤ its ``eps``. Groups that stop are
dropped from the batch, so most of the work goes to the few groups that need many atoms.

Group Lasso (ℓ1,2; Yuan and Lin 2006), the penalty of Mairal et al.'s non-local sparse model:
    min_A ½‖X − A Dᵀ‖²_F + λ Σ_j ‖A_{:,j}‖₂
by FISTA (Beck and Teboulle 2009) with the group soft threshold
    A_{:,j} ← A_{:,j} · max(0, 1 − τ / ‖A_{:,j}‖₂),  τ = λ / L,  L = ‖D‖².
"""

from __future__ import annotations

import torch

from sparseland.errors import ShapeError
from sparseland.momentum import next_momentum


def as_groups(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """Rows (n, m) as groups (n / g, g, m) of consecutive rows."""
    n, m = x.shape
    if n % group_size:
        raise ShapeError(
            f"{n} signals do not split into groups of {group_size} consecutive rows; "
            f"pass a multiple of group_size={group_size} signals"
        )
    return x.reshape(n // group_size, group_size, m)


@torch.no_grad()
def simultaneous_omp(
    x: torch.Tensor, dictionary: torch.Tensor, k: int, eps: torch.Tensor | float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes (G, g, n_atoms) of the groups ``x`` (G, g, m) and each group's atom count (G,).

    ``eps``: squared Frobenius error target per group (a scalar or one per group); None: k atoms.
    """
    support, coefs, count = simultaneous_omp_support(x, dictionary, k, eps)
    n_groups, g, _ = x.shape
    codes = torch.zeros(n_groups, g, dictionary.shape[1], dtype=x.dtype, device=x.device)
    mask = torch.arange(support.shape[1], device=x.device)[None] < count[:, None]
    codes.scatter_add_(
        2,
        support[:, None, :].expand(-1, g, -1),
        (coefs * mask[:, :, None]).transpose(1, 2),
    )
    return codes, count


@torch.no_grad()
def simultaneous_omp_support(
    x: torch.Tensor, dictionary: torch.Tensor, k: int, eps: torch.Tensor | float | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The supports (G, k) in selection order, the codes on them (G, k, g) and the atom counts
    (G,) of simultaneous OMP; entries past a group's count are meaningless."""
    n_groups, g, _ = x.shape
    n_atoms = dictionary.shape[1]
    k = max(0, min(k, n_atoms, dictionary.shape[0]))
    dtype, device = x.dtype, x.device
    gram = dictionary.T @ dictionary
    corr0 = x @ dictionary  # (G, g, K): D_jᵀ x_i
    energy = x.pow(2).sum(dim=(1, 2))  # ‖X‖²_F
    if eps is None:
        target = torch.zeros(n_groups, dtype=dtype, device=device)
    else:
        target = torch.as_tensor(eps, dtype=dtype, device=device).expand(n_groups).clone()
    support = torch.zeros(n_groups, k, dtype=torch.long, device=device)
    coefs = torch.zeros(n_groups, k, g, dtype=dtype, device=device)  # codes on the support
    count = torch.zeros(n_groups, dtype=torch.long, device=device)
    rounding = torch.finfo(dtype).eps
    active = torch.nonzero(energy > target).reshape(-1)
    corr = corr0[active]  # correlations of the residuals of the active groups
    for s in range(k):
        if active.numel() == 0:
            break
        score = corr.pow(2).sum(dim=1)  # (A, K): Σ_i (d_jᵀ r_i)²
        if s > 0:
            score.scatter_(1, support[active, :s], -1.0)  # chosen atoms: never again
        j = score.argmax(dim=1)
        # a group whose residual is orthogonal to every atom (up to rounding) is done
        moving = score.gather(1, j[:, None])[:, 0] > rounding * energy[active]
        support[active, s] = j
        idx = support[active, : s + 1]  # (A, s+1)
        sub = gram[idx[:, :, None], idx[:, None, :]]  # G_II (A, s+1, s+1)
        rhs = corr0[active].gather(2, idx[:, None, :].expand(-1, g, -1)).transpose(1, 2)
        chol, info = torch.linalg.cholesky_ex(sub)
        moving &= info == 0  # the new atom depends linearly on the chosen ones
        gamma = torch.cholesky_solve(rhs, chol)  # (A, s+1, g): least squares on D_I
        gamma = torch.where(moving[:, None, None], gamma, coefs[active, : s + 1])
        coefs[active, : s + 1] = gamma
        count[active] = torch.where(moving, s + 1, count[active])
        # ‖X − A D_Iᵀ‖² = ‖X‖² − Σ_i γ_iᵀ D_Iᵀ x_i at the least-squares fit
        residual = energy[active] - (gamma * rhs).sum(dim=(1, 2))
        keep = moving & (residual > target[active])
        if s + 1 == k:
            break
        active, gamma, idx = active[keep], gamma[keep], idx[keep]
        # residual correlations Dᵀ r_i = Dᵀ x_i − G_{:,I} γ_i
        corr = corr0[active] - (gram[:, idx].permute(1, 0, 2) @ gamma).transpose(1, 2)
    return support, coefs, count


def group_soft_threshold(a: torch.Tensor, tau: float) -> torch.Tensor:
    """Shrink each atom's row of codes across the group, a (G, g, K): columns over dim 1."""
    norms = a.norm(dim=1, keepdim=True)
    return a * torch.clamp(1.0 - tau / norms.clamp_min(1e-30), min=0.0)


@torch.no_grad()
def group_lasso(
    x: torch.Tensor,
    dictionary: torch.Tensor,
    lam: float,
    max_iter: int = 500,
    tol: float = 1e-7,
    init: torch.Tensor | None = None,
) -> tuple[torch.Tensor, int]:
    """Codes (G, g, n_atoms) minimising ½‖X − A Dᵀ‖²_F + λ Σ_j ‖A_{:,j}‖₂ per group, and the
    iterations run. Stops when every group's relative change ‖A_k − A_{k−1}‖/‖A_k‖ < ``tol``."""
    gram = dictionary.T @ dictionary
    corr0 = x @ dictionary
    lipschitz = float(torch.linalg.eigvalsh(gram.double()).max())
    tau = lam / lipschitz
    a = torch.zeros_like(corr0) if init is None else init.clone()
    y, t = a.clone(), 1.0
    iterations = max_iter
    for it in range(1, max_iter + 1):
        grad = y @ gram - corr0  # ∂/∂A ½‖X − A Dᵀ‖² = A G − X D
        a_next = group_soft_threshold(y - grad / lipschitz, tau)
        t_next, beta = next_momentum(t)
        y = a_next + beta * (a_next - a)
        change = (a_next - a).flatten(1).norm(dim=1)
        scale = a_next.flatten(1).norm(dim=1).clamp_min(1e-30)
        a, t = a_next, t_next
        if bool((change <= tol * scale).all()):
            iterations = it
            break
    return a, iterations
