"""The Lasso by over-relaxed ADMM, batched over signals, the h-update by one shared factorisation.

min_h ½‖x − D h‖² + λ‖h‖₁  (optionally h ≥ 0), split as h = z (Boyd et al. 2011, §6.4, scaled form
with over-relaxation α, their §3.4.3):
    h ← (DᵀD + ρI)⁻¹(Dᵀx + ρ(z − u)),
    ĥ ← α h + (1 − α) z,
    z ← S_{λ/ρ}(ĥ + u),        u ← u + ĥ − z.
The system matrix is the same for every signal, so it is factorised once per call. For an
overcomplete D (m < k atoms) the matrix inversion lemma keeps every product m-dimensional:
    (DᵀD + ρI)⁻¹ = (I − Dᵀ(ρI + DDᵀ)⁻¹D)/ρ,
so with v = z − u and y = (x − DDᵀ(ρI + DDᵀ)⁻¹x)/ρ precomputed, h = v + Dᵀ(y − W D v) with
W = (ρI + DDᵀ)⁻¹: two GEMMs with D per iteration, as many as a FISTA step. And since
S_τ(w) = w − clip(w, −τ, τ), the pair (z, u) comes out of one clip: u = clip(w, −τ, τ), z = w − u.

Unlike proximal gradient, ADMM's speed does not depend on ‖D‖²: on 8×8 patches with the 64×256
overcomplete DCT (‖D‖² ≈ 14) it reaches a relative objective gap of 1e-3 in about 20 iterations
where FISTA needs about 100 (benchmarks/results/pursuit.md), about 16 when u starts at the
projected dual of z = 0, clip(Dᵀx/ρ, −λ/ρ, λ/ρ), instead of 0. The returned codes are z, exactly
sparse. ρ: by default 1.6·√(λ/s) with s the RMS norm of the signals (tuned on natural patches with
unit-norm atoms for λ from 0.02 to 0.2; the best ρ grows like √λ there); set ``rho`` to override.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from sparseland import option, register_pursuit
from sparseland.errors import check
from sparseland.interfaces import PursuitInfo
from sparseland.operators import LinearOperator, MatrixOperator
from sparseland.plugins.pursuit._torch import as_torch, back, dense_matrix
from sparseland.plugins.pursuit.proximal_gradient import (
    LassoPursuit,
    LassoPursuitConfig,
    converged_fraction,
    report_convergence,
    unit_atoms,
)
from sparseland.problems import Lasso

RHO_SCALE = 1.6  # ρ = RHO_SCALE·√(λ/s), see the module docstring


@dataclass
class AdmmConfig(LassoPursuitConfig):
    max_iter: int = option(100, "ADMM iterations per signal")
    tol: float = option(1e-4, "stop when every signal's ‖z_k − z_{k−1}‖ and ‖h − z‖ are < tol·‖z‖")
    rho: float | None = option(None, "penalty ρ; None: 1.6·√(λ/s), s the RMS signal norm")
    relaxation: float = option(
        1.8, "over-relaxation α in (0, 2); 1 is plain ADMM, 1.5–1.8 is usually faster"
    )
    # On the CPU, signals are solved in blocks of this many rows, each to convergence: the
    # iterates (block × k floats) then stay in cache (10,000 patches, 256 atoms: 1.7× faster
    # with 1024 than all at once). 0, and any GPU: the whole batch at once.
    cpu_block: int = option(
        1024, "CPU only: rows solved together, each block to convergence (0: the whole batch)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.rho is None or self.rho > 0, "rho", f"must be > 0, got {self.rho}")
        check(self.cpu_block >= 0, "cpu_block", f"must be >= 0, got {self.cpu_block}")
        check(
            0 < self.relaxation < 2,
            "relaxation",
            f"must be in (0, 2), got {self.relaxation}",
            "1 is plain ADMM; over-relaxation 1.5–1.8 usually converges faster",
        )


def default_rho(x: torch.Tensor, lam: float) -> float:
    scale = float(torch.sqrt((x * x).sum(1).mean()))
    return RHO_SCALE * math.sqrt(lam / scale) if lam > 0 and scale > 0 else 1.0


class _HUpdate:
    """h = (DᵀD + ρI)⁻¹(Dᵀx + ρ v), factorised once per call (Woodbury when m < k) and applied
    to every block: ``offset(x)`` is the part that depends on the signals only."""

    def __init__(self, dictionary: torch.Tensor, rho: float) -> None:
        m, k = dictionary.shape
        work = torch.float64  # the small factorisations in double, applied in D's dtype
        d64 = dictionary.to(work)
        eye = torch.eye(min(m, k), dtype=work, device=dictionary.device)
        self.dictionary = dictionary
        self.woodbury = m < k
        if self.woodbury:
            frame = d64 @ d64.T
            w = torch.linalg.inv(frame + rho * eye)
            self.minus_w = (-w).to(dictionary.dtype)
            # y = (x − DDᵀ W x)/ρ = x (I − DDᵀW)/ρ; (ρI + DDᵀ) and W commute and are symmetric
            self.x_map = ((eye - frame @ w) / rho).to(dictionary.dtype)
        else:
            inv = torch.linalg.inv(d64.T @ d64 + rho * eye)
            self.scaled_inv = (rho * inv).to(dictionary.dtype)
            self.x_map = (d64 @ inv).to(dictionary.dtype)  # (DᵀD + ρI)⁻¹Dᵀx as rows

    def offset(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.x_map

    def __call__(self, v: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        if self.woodbury:
            t = torch.addmm(offset, v @ self.dictionary.T, self.minus_w)
            return torch.addmm(v, t, self.dictionary)
        return torch.addmm(offset, v, self.scaled_inv)


def _unit_atoms(dictionary: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Atoms of unequal norms rescaled to unit norm, and their norms (see ``unit_atoms``)."""
    op, norms = unit_atoms(MatrixOperator(dictionary))
    return (dictionary, None) if norms is None else (op.matrix, norms)


def _row_norm(a: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(a, dim=1)


def admm_block(
    x: torch.Tensor,
    dictionary: torch.Tensor,
    init: torch.Tensor | None,
    cfg: AdmmConfig,
    problem: Lasso,
    rho: float,
    h_update: _HUpdate,
    norms: torch.Tensor | None = None,
    original: torch.Tensor | None = None,
) -> tuple[torch.Tensor, int, float, int]:
    """ADMM on one block of signals: codes z, iterations run, worst relative change and the
    number of signals short of the tolerance. ``norms``: the atoms were rescaled to unit norm
    (see ``unit_atoms``), the threshold is λ/(ρ‖d_j‖) per atom; ``original``: the atoms as given."""
    tau: Any = problem.lam / rho if norms is None else problem.lam / (rho * norms)
    alpha = cfg.relaxation
    # Signals whose codes are zero at the optimum are done at once: their stop test would
    # divide by ‖z‖ = 0.
    atoms = dictionary if original is None else original
    done = problem.zero_is_optimal(x @ atoms)
    if bool(done.all()):
        return x.new_zeros(x.shape[0], dictionary.shape[1]), 0, 0.0, 0
    offset = h_update.offset(x)
    if init is None:
        z = torch.zeros(x.shape[0], dictionary.shape[1], dtype=x.dtype, device=x.device)
        # u starts at the dual of z = 0, Dᵀx/ρ (the fixed-point relation ρu = Dᵀ(x − D z)),
        # projected on the set the dual lives in, |u| ≤ τ (u ≤ τ for h ≥ 0): on 8×8 patches
        # this reaches a mean relative objective gap of 1e-3 in about 16 iterations instead
        # of 20 from u = 0 (benchmarks/results/pursuit.md)
        bound = torch.as_tensor(tau, dtype=x.dtype, device=x.device)
        u = torch.minimum((x @ dictionary) / rho, bound)
        if not problem.positive:
            u = torch.maximum(u, -bound)
    else:
        z = init.to(x.dtype).clone()
        # The fixed point has ρu = Dᵀ(x − D z) (the h-update's optimality condition at h = z),
        # so a warm start also starts u there: from a solution, ADMM stays put.
        u = ((x - z @ dictionary.T) @ dictionary) / rho
    rel, stalled = math.inf, x.shape[0]
    it = 0
    for it in range(1, cfg.max_iter + 1):
        z_old = z
        h = h_update(z - u, offset)
        w = torch.lerp(z, h, alpha).add_(u)  # ĥ + u
        # z = S_τ(w) (the soft threshold of sparseland.problems) written as w − clip(w, −τ, τ),
        # so that the clipped part is the new dual u = w − z in the same pass
        if problem.positive:
            z = torch.clamp(w - tau, min=0.0)
            u = w.sub_(z)
        else:
            u = w.clamp(-tau, tau)
            z = w.sub_(u)
        if it % cfg.check_every == 0 or it == cfg.max_iter:
            size = _row_norm(z).clamp_min(1e-30)
            change = torch.maximum(_row_norm(z - z_old), _row_norm(h - z)) / size
            change = change.masked_fill_(done, 0.0)
            rel = float(change.max())
            stalled = int((change >= cfg.tol).sum())
            if rel < cfg.tol:
                break
    return z.masked_fill_(done[:, None], 0.0), it, rel, stalled


# the pursuit skeleton (dense matrix, torch inside, the caller's arrays outside), as in admm
@register_pursuit("admm", config=AdmmConfig)
class Admm(LassoPursuit):
    needs_matrix = True

    def solve(self, x: Any, op: LinearOperator, init: Any | None) -> Any:
        cfg: AdmmConfig = self.config  # type: ignore[assignment]
        xt, backend = as_torch(x)
        dictionary = dense_matrix(op, xt)
        rho = cfg.rho if cfg.rho is not None else default_rho(xt, self.problem.lam)
        original = dictionary
        dictionary, norms = _unit_atoms(dictionary)
        h0 = None if init is None else as_torch(init)[0]
        if h0 is not None and norms is not None:
            h0 = h0 * norms
        n = xt.shape[0]
        block = cfg.cpu_block if cfg.cpu_block > 0 and xt.device.type == "cpu" else n
        h_update = _HUpdate(dictionary, rho)
        codes, iterations, rel, stalled = [], 0, 0.0, 0
        for start in range(0, max(n, 1), max(block, 1)):
            rows = slice(start, start + block)
            init_rows = None if h0 is None else h0[rows]
            z, it, r, short = admm_block(
                xt[rows], dictionary, init_rows, cfg, self.problem, rho, h_update, norms, original
            )
            codes.append(z)
            iterations, rel = max(iterations, it), max(rel, r)
            stalled += short if it >= cfg.max_iter else 0
        report_convergence("admm", cfg, cfg.max_iter, stalled, n)
        z = torch.cat(codes) if len(codes) != 1 else codes[0]
        if norms is not None:
            z = z / norms
        dictionary = original
        gap, worst = math.nan, rel
        if cfg.compute_gap:
            op_d = MatrixOperator(dictionary)
            gaps = self.problem.duality_gap(xt, op_d, z)
            gap, worst = float(gaps.mean()), float(gaps.max())
        # iterations: the most any block ran; rel_change: the worst
        # max(‖z_k − z_{k−1}‖, ‖h − z‖)/‖z‖ at the last check.
        self.info = PursuitInfo(
            iterations=iterations,
            rel_change=rel,
            duality_gap=gap,
            converged_fraction=converged_fraction(cfg, cfg.max_iter, stalled, n),
            max_gap=worst,
        )
        return back(z, backend)
