"""Orthogonal matching pursuit (Pati, Rezaiifar and Krishnaprasad 1993), batched as Batch-OMP.

Batch-OMP (Rubinstein, Zibulevsky and Elad 2008, Algorithm 3) works from α⁰ = Dᵀx and G = DᵀD.
At step s each signal picks the atom j = argmax |α_j| most correlated with its residual and the
Cholesky factor of the Gram submatrix G_II grows by one row (progressive Cholesky, their eq. 4):
    w = L⁻¹ G_{I,j},   L ← [[L, 0], [wᵀ, √(G_jj − wᵀw)]].
We carry L⁻¹ instead of L (its new row is [−wᵀL⁻¹/d, 1/d]), so nothing is ever solved: w is a
product with L⁻¹, z = L⁻¹ α⁰_I grows by z_s = α_j / d, and the coefficients γ_I = L⁻ᵀ z grow by
z_s·(row s of L⁻¹). The squared residual is ‖x‖² − ‖z‖² (their ε update, eq. 7). The
correlations are recomputed from scratch, α = α⁰ − G_{:,I} γ_I (as in their Algorithm 3), as
one fused gather-and-weighted-sum over the rows of the table [G; α⁰] (``embedding_bag``): s + 2
rows of length n_atoms per signal with no intermediate written back; the last step skips it, as
its correlations are never needed.
Stopping, per signal: k atoms, or residual norm ‖x − D h‖₂ ≤ eps (whichever comes first).
The loop runs over the k selection steps only; every step is batched over the signals. On the
CPU the signals go in blocks of ``CPU_BLOCK`` so that α and the table stay in cache, the per-signal
k × k algebra is laid out signals-last (contiguous rows), and argmax |α| runs in numpy, whose
argmax is SIMD-vectorised.
In float64 on the CPU, where torch's embedding_bag has no fast kernel (5–8× slower than in
float32), α is kept in float32 for the selection only: a row takes the float32 argmax when its
lead over the runner-up exceeds twice a bound on the float32 rounding error, and the rare rows
where it does not are recomputed in float64. Everything else (α_j, L⁻¹, γ, the residual) is
float64, so the result is the float64 algorithm's.
On the CPU (``kernel=auto``, numba installed) the same steps and stopping rules run compiled,
one signal at a time (plugins/pursuit/_omp_compiled.py): ``batch_omp`` below is the path for
GPUs and ``kernel=batched``. Timings against SPAMS: benchmarks/results/pursuit.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch.nn.functional import embedding_bag

from sparseland import option, register_pursuit
from sparseland.errors import ConfigError, check
from sparseland.interfaces import Pursuit, PursuitConfig, PursuitInfo
from sparseland.operators import LinearOperator
from sparseland.plugins.pursuit._torch import (
    as_torch,
    back,
    check_kernel,
    compiled_kernel,
    dense_matrix,
    one_thread,
)
from sparseland.problems import L0, L0Error, Problem


def check_targets(k: int | None, eps: float | None) -> None:
    """A sparsity target ``k``, an error target ``eps``, or both: the greedy pursuits' checks."""
    check(k is None or k >= 1, "k", f"must be >= 1, got {k}")
    check(eps is None or eps >= 0, "eps", f"must be >= 0, got {eps}")
    check(
        k is not None or eps is not None,
        "k",
        "k and eps are both unset",
        "set a sparsity target k, an error target eps, or both",
    )


@dataclass
class OmpConfig(PursuitConfig):
    k: int | None = option(
        8, "sparsity target: at most k atoms per signal (None: up to min(m, n_atoms))"
    )
    eps: float | None = option(None, "error target: stop a signal once ‖x − D h‖₂ ≤ eps")
    kernel: str = option(
        "auto",
        "'compiled' (one signal at a time, compiled with numba; CPU only), 'batched' (torch, "
        "many signals per kernel; any device) or 'auto' (compiled on the CPU when numba is "
        "installed, batched otherwise)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_targets(self.k, self.eps)
        check_kernel(self.kernel)


# Signals per block on the CPU, for 4-byte floats (half as many for 8-byte ones), so that the
# block's correlations (block × n_atoms) stay in cache; any GPU: the whole batch at once.
# 10,000 patches, 256 atoms, one thread: 2048 beat 1024 (and tied 4096) in float32, and 1024
# beat 512 and 2048 in float64.
CPU_BLOCK = 2048


def _argmax_abs(alpha: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """argmax_j |α_ij| per row (the first index on ties, as numpy and scikit-learn); |α| is
    written to ``out``, which may be ``alpha`` itself."""
    if alpha.device.type == "cpu" and alpha.dtype in (torch.float32, torch.float64):
        # numpy's argmax is SIMD-vectorised; torch's CPU argmax is several times slower.
        magnitude = np.abs(alpha.numpy(), out=out.numpy())
        return torch.from_numpy(magnitude.argmax(axis=1))
    return torch.abs(alpha, out=out).argmax(dim=1)


def _certified_argmax(
    approx: torch.Tensor, bound: torch.Tensor, exact: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """argmax_j |α_ij| from an approximation ``approx`` of α with |approx − α| ≤ ``bound``
    (per row): rows whose largest |approx| leads the second by more than 2·bound have the exact
    argmax; the others take ``exact(rows)`` (their α, computed exactly). ``approx`` is
    overwritten."""
    energy = np.multiply(approx.numpy(), approx.numpy(), out=approx.numpy())
    index = energy.argmax(axis=1)
    rows = np.arange(energy.shape[0])
    top = np.sqrt(energy[rows, index])
    energy[rows, index] = -1.0
    runner_up = np.sqrt(energy.max(axis=1))
    doubtful = np.flatnonzero(top - runner_up <= 2.0 * bound.numpy())
    if doubtful.size:
        doubtful_rows = torch.from_numpy(doubtful)
        magnitude = exact(doubtful_rows).abs().numpy()
        index[doubtful] = magnitude.argmax(axis=1)
    return torch.from_numpy(index)


def _exact_correlations(
    table: torch.Tensor,
    bag: torch.Tensor,
    weights: torch.Tensor,
    flat: torch.Tensor,
    rows: torch.Tensor,
    *,
    s: int,
) -> torch.Tensor:
    """α after ``s`` atoms for some ``rows`` of the block, in the table's precision, with
    the chosen atoms zeroed (as in :func:`batch_omp`)."""
    alpha = embedding_bag(
        bag[: s + 1, rows].T, table, per_sample_weights=weights[: s + 1, rows].T, mode="sum"
    )
    n_atoms = alpha.shape[1]
    chosen = flat[:s, rows] % n_atoms + n_atoms * torch.arange(rows.numel())
    alpha.view(-1).index_fill_(0, chosen.reshape(-1), 0.0)
    return alpha


@torch.no_grad()  # a greedy selection: the codes carry no gradient
def batch_omp(
    x: torch.Tensor,
    dictionary: torch.Tensor,
    k: int,
    eps: float | None,
    block: int | None = None,
) -> tuple[torch.Tensor, int, torch.Tensor]:
    """Codes (n × n_atoms) with at most ``k`` non-zeros each (fewer for signals whose residual
    norm reaches ``eps``), the number of steps run, and the squared residual norms ‖x − D h‖² (n).

    ``block``: signals per block (default: ``CPU_BLOCK`` scaled to the element size on the CPU,
    the whole batch elsewhere); the result does not depend on it.
    """
    n, n_atoms = x.shape[0], dictionary.shape[1]
    dtype, device = x.dtype, x.device
    eps_sq = None if eps is None else eps * eps  # the loop tracks the squared residual
    # float64 on the CPU: a float32 copy of the table gives α for the selection (see above).
    mixed = device.type == "cpu" and dtype == torch.float64
    if block is None or block <= 0:
        size = 4 if mixed else x.element_size()  # the bytes of α's elements
        block = max(1, CPU_BLOCK * 4 // size) if device.type == "cpu" else n
    block = max(1, min(block, n))
    # Rounding level (as scikit-learn's orthogonal_mp_gram, but relative to the scales of the
    # problem): machine epsilon times ‖d_j‖²‖x‖² for α_j², times ‖d_j‖² for the new pivot.
    rounding = torch.finfo(dtype).eps
    tiny = torch.finfo(dtype).tiny
    # Rows 0…n_atoms−1: G = DᵀD; rows n_atoms…: α⁰ = Dᵀx of the current block.
    table = torch.empty(n_atoms + block, n_atoms, dtype=dtype, device=device)
    gram = torch.mm(dictionary.T, dictionary, out=table[:n_atoms])
    gram_flat = gram.reshape(-1)
    diag = gram.diagonal().contiguous()
    # Rows 0…n_atoms−1: the atoms; rows n_atoms…: the signals of the current block. With the
    # bags and weights below, one more fused gather-and-sum gives the residual x − D_I γ_I.
    if mixed:
        table32 = torch.empty(n_atoms + block, n_atoms, dtype=torch.float32)
        table32[:n_atoms] = gram
        weights32_buf = torch.empty(k + 1, block, dtype=torch.float32)
        gram_max = float(gram.abs().max())
    signals = torch.empty(n_atoms + block, x.shape[1], dtype=dtype, device=device)
    signals[:n_atoms] = dictionary.T
    codes = torch.zeros(n, n_atoms, dtype=dtype, device=device)
    residual_sq = torch.empty(n, dtype=dtype, device=device)
    # Per-block state, signals last so that the small k × k algebra runs along contiguous rows.
    # bag[0] = row of α⁰ in the table (weight 1); bag[1 + t] = atom chosen at step t, with
    # weight −γ_t; flat[t] = its index into α (flattened).
    bag_buf = torch.empty(k + 1, block, dtype=torch.long, device=device)
    weights_buf = torch.empty(k + 1, block, dtype=dtype, device=device)
    flat_buf = torch.empty(k, block, dtype=torch.long, device=device)
    inv_buf = torch.empty(k, k, block, dtype=dtype, device=device)  # L⁻¹, lower triangular
    scratch_buf = torch.empty(block, n_atoms, dtype=dtype, device=device)
    steps = 0
    for start in range(0, n, block):
        rows = slice(start, min(n, start + block))
        xb = x[rows]
        nb = xb.shape[0]
        alpha = torch.mm(xb, dictionary, out=table[n_atoms : n_atoms + nb])  # α⁰
        alpha0_flat = alpha.view(-1)
        if mixed:
            table32[n_atoms : n_atoms + nb] = alpha
            alpha0_max = torch.zeros(nb, dtype=dtype)  # max_j |α⁰_j|, set at step 0
        bag, weights, flat = bag_buf[:, :nb], weights_buf[:, :nb], flat_buf[:, :nb]
        inv, scratch = inv_buf[:, :, :nb], scratch_buf[:nb]
        offsets = torch.arange(0, nb * n_atoms, n_atoms, device=device)
        bag.zero_()
        bag[0] = torch.arange(n_atoms, n_atoms + nb, device=device)
        weights.zero_()
        weights[0] = 1.0
        inv.zero_()
        error = (xb * xb).sum(dim=1)  # ‖residual‖² = ‖x‖² − Σ z_t²
        energy = error.clone()  # ‖x‖², the scale of the rounding level of α
        running = torch.ones(nb, dtype=torch.bool, device=device)
        if eps_sq is not None:
            running &= error > eps_sq
        for s in range(k):
            if not bool(running.any()):
                break
            steps = max(steps, s + 1)
            if mixed and s > 0:
                # float32 error of α = α⁰ − Σ_t γ_t G_{I_t,:} after s atoms: the s + 1 terms,
                # their weights and the s additions each err by 2⁻²⁴ of the terms' magnitude,
                # so 2(s + 3)·2⁻²⁴·(max|α⁰| + max|G|·Σ|γ|) bounds it with a factor 2 to spare.
                bound = (2 * (s + 3) * 2.0**-24) * (
                    alpha0_max + gram_max * weights[1 : s + 1].abs().sum(dim=0)
                )
                j = _certified_argmax(
                    alpha, bound, partial(_exact_correlations, table, bag, weights, flat, s=s)
                )
            else:
                # α⁰ stays in the table; later α are scratch, overwritten by |α|.
                j = _argmax_abs(alpha, scratch if s == 0 else alpha)
            torch.add(offsets, j, out=flat[s])
            best = alpha0_flat.index_select(0, flat[s])  # α⁰_j
            d2 = diag.index_select(0, j)
            atom_sq = d2  # ‖d_j‖²
            if mixed and s == 0:
                alpha0_max = best.abs()
            if s > 0:
                # w = L⁻¹ G_{I,j}: the new atom's coordinates on the orthonormal q_1…q_s.
                g = gram_flat.take(bag[1 : s + 1] * n_atoms + j)
                best += (weights[1 : s + 1] * g).sum(dim=0)  # α_j = α⁰_j − Σ_t γ_t G_{I_t,j}
                inv_s = inv[:s, :s]
                w = (inv_s * g[None]).sum(dim=1)
                d2 = d2 - (w * w).sum(dim=0)
            # A signal stops when its residual is orthogonal to every atom or the new atom
            # depends linearly on the chosen ones, both up to rounding (as scikit-learn's
            # orthogonal_mp_gram does, relative here so that the scale of D and x is moot).
            running &= (best * best > rounding * atom_sq * energy) & (d2 > rounding * atom_sq)
            inv_d = torch.where(running, torch.rsqrt(d2.clamp_min(tiny)), 0.0)  # 0: stopped
            if s > 0:
                # Row s of L⁻¹: [−wᵀL⁻¹/d, 1/d].
                torch.mul((w[:, None] * inv_s).sum(dim=0), -inv_d, out=inv[s, :s])
            inv[s, s] = inv_d
            zs = best * inv_d  # z_s = q_sᵀx
            # γ_I = L⁻ᵀ z grows by z_s · (row s of L⁻¹); the weights hold −γ.
            weights[1 : s + 2].addcmul_(inv[s, : s + 1], zs, value=-1.0)
            bag[s + 1] = j
            error -= zs * zs
            if eps_sq is not None:
                running &= error > eps_sq
            if s == k - 1:
                break  # the correlations are not needed after the last atom
            # α = α⁰ − Σ_t γ_t G_{I_t,:}: one fused gather-and-sum over the rows of the table.
            if mixed:
                weights32 = weights32_buf[: s + 2, :nb]
                weights32.copy_(weights[: s + 2])
                alpha = embedding_bag(
                    bag[: s + 2].T, table32, per_sample_weights=weights32.T, mode="sum"
                )
            else:
                alpha = embedding_bag(
                    bag[: s + 2].T, table, per_sample_weights=weights[: s + 2].T, mode="sum"
                )
            # Chosen atoms are orthogonal to the residual: zero their α (rounding) so that
            # argmax |α| never picks one again.
            alpha.view(-1).index_fill_(0, flat[: s + 1].reshape(-1), 0.0)
        # Stopped signals added zero weights, so the codes need no mask.
        codes[rows].scatter_add_(1, bag[1:].T, weights[1:].T.neg())
        signals[n_atoms : n_atoms + nb] = xb
        residual = embedding_bag(bag.T, signals, per_sample_weights=weights.T, mode="sum")
        torch.sum(residual * residual, dim=1, out=residual_sq[rows])
    return codes, steps, residual_sq


@register_pursuit("omp", config=OmpConfig)
class Omp(Pursuit):
    """Solves L0(k), or L0Error(eps) with at most ``k`` atoms when both are set."""

    needs_matrix = True
    solves = (L0, L0Error)

    @classmethod
    def problem_from(cls, config: Any) -> Problem:
        if config.eps is not None:
            return L0Error(config.eps)
        return L0(config.k)

    def validate(self, x: Any, op: LinearOperator) -> None:
        super().validate(x, op)
        cfg: OmpConfig = self.config  # type: ignore[assignment]
        n_atoms = int(op.matrix.shape[1])  # as given, before zero atoms are left out
        if cfg.k is not None and cfg.k > n_atoms:
            raise ConfigError(
                "k",
                f"{cfg.k} atoms asked of a dictionary of {n_atoms} atoms",
                f"use k <= {n_atoms}",
            )

    def solve(self, x: Any, op: LinearOperator, init: Any | None) -> Any:
        cfg: OmpConfig = self.config  # type: ignore[assignment]
        xt, backend = as_torch(x)
        dictionary = dense_matrix(op, xt)
        m, n_atoms = dictionary.shape
        problem = self.problem
        k = problem.k if isinstance(problem, L0) else (cfg.k or min(m, n_atoms))
        eps = problem.eps if isinstance(problem, L0Error) else None
        # No more atoms than the rank of D allows (≤ min(m, n_atoms)): with k ≥ m the fit is
        # exact after at most rank-many atoms, and further ones would only fit rounding errors.
        k = min(k, m, n_atoms)
        compiled = compiled_kernel("omp", cfg.kernel, xt.device)
        if compiled and xt.dtype in (torch.float32, torch.float64):
            from sparseland.plugins.pursuit._omp_compiled import compiled_omp

            threads = torch.get_num_threads()
            with one_thread(xt.device):  # each thread's products on one core
                codes, steps, residual_sq = compiled_omp(xt, dictionary, k, eps, threads)
        else:
            codes, steps, residual_sq = batch_omp(xt, dictionary, k, eps)
        rel = float((residual_sq.sqrt() / xt.detach().norm(dim=1).clamp_min(1e-30)).mean())
        # For OMP, rel_change reports the mean relative residual ‖x − Dh‖/‖x‖.
        self.info = PursuitInfo(iterations=steps, rel_change=rel, converged_fraction=1.0)
        return back(codes, backend)
