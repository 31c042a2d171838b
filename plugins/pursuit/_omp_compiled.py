"""Batch-OMP compiled for the CPU: one signal at a time (as SPAMS works), the signals split
between threads that run without Python's interpreter lock.

The same algorithm and stopping rules as ``omp.batch_omp`` (Rubinstein, Zibulevsky and Elad
2008, Algorithm 3): from α⁰ = Dᵀx and G = DᵀD, each step takes j = argmax |α_j| (the first on
ties), grows L⁻¹ (the inverse of the Cholesky factor of G_II) by the row [−wᵀL⁻¹/d, 1/d] with
w = L⁻¹G_{I,j} and d² = G_jj − ‖w‖², updates γ_I = L⁻ᵀz by z_s = α_j/d times that row, and
recomputes α = α⁰ − G_{:,I}γ_I. A signal stops after k atoms, once ‖x − D h‖² ≤ eps², or when
α_j² or d² is at rounding level (relative to ‖d_j‖²‖x‖² and ‖d_j‖², as in ``batch_omp``).
The arithmetic is in the signals' precision (float32 or float64), sums of products carried in
float64. Batched over signals each step is a few large kernels over every signal's n_atoms
correlations; compiled, the k × n_atoms work of a signal stays in cache.

The kernel is compiled on its first call (numba caches it on disk for the next process); omp
imports this module only when it runs the compiled kernel.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from numba import njit

from sparseland.plugins.pursuit._torch import over_threads


@njit(nogil=True, cache=True)
def argmax_abs(alpha: Any) -> int:
    """The first j with the largest |α_j| (as numpy's argmax), compared in α's precision."""
    j, top = 0, abs(alpha[0])
    for a in range(1, alpha.shape[0]):
        magnitude = abs(alpha[a])
        if magnitude > top:
            j, top = a, magnitude
    return j


@njit(nogil=True, cache=True)
def omp_rows(
    gram: Any,
    c: Any,
    energy: Any,
    k: int,
    eps_sq: float,
    rounding: float,
    out: Any,
    steps: Any,
    residual_sq: Any,
) -> None:
    """Codes of the signals with correlations ``c`` (n × n_atoms) and squared norms ``energy``
    into ``out``, the atoms each took into ``steps`` and ‖x − D h‖² = ‖x‖² − ‖z‖² (Batch-OMP's
    update, their eq. 7) into ``residual_sq``; ``eps_sq`` < 0: no error target."""
    n, n_atoms = c.shape
    alpha = np.empty(n_atoms, c.dtype)
    inv = np.zeros((k, k), c.dtype)  # L⁻¹, lower triangular
    gamma = np.zeros(k, c.dtype)
    w = np.zeros(k, c.dtype)
    atoms = np.zeros(k, np.int64)
    for i in range(n):
        for a in range(n_atoms):
            alpha[a] = c[i, a]
        error = float(energy[i])
        s = 0
        while s < k and error > eps_sq:
            j = argmax_abs(alpha)
            best = float(alpha[j])
            atom_sq = float(gram[j, j])
            d2 = atom_sq
            for t in range(s):  # w = L⁻¹G_{I,j}
                acc = 0.0
                for u in range(t + 1):
                    acc += float(inv[t, u]) * float(gram[atoms[u], j])
                w[t] = acc
                d2 -= acc * acc
            # the residual orthogonal to every atom, or d_j dependent on the chosen ones
            if not (best * best > rounding * atom_sq * energy[i] and d2 > rounding * atom_sq):
                break
            inv_d = 1.0 / math.sqrt(d2)
            for u in range(s):  # row s of L⁻¹: [−wᵀL⁻¹/d, 1/d]
                acc = 0.0
                for t in range(u, s):
                    acc += float(w[t]) * float(inv[t, u])
                inv[s, u] = -acc * inv_d
            inv[s, s] = inv_d
            zs = best * inv_d  # z_s = q_sᵀx
            for u in range(s + 1):  # γ_I = L⁻ᵀz grows by z_s · (row s of L⁻¹)
                gamma[u] += zs * inv[s, u]
            atoms[s] = j
            error -= zs * zs
            s += 1
            if s == k or error <= eps_sq:
                break  # the correlations are not needed any more
            for a in range(n_atoms):  # α = α⁰ − G_{:,I}γ_I
                alpha[a] = c[i, a]
            for u in range(s):
                row, g = gram[atoms[u]], gamma[u]
                for a in range(n_atoms):
                    alpha[a] -= row[a] * g
            for u in range(s):  # chosen atoms are orthogonal to the residual (rounding)
                alpha[atoms[u]] = 0.0
        for a in range(n_atoms):
            out[i, a] = 0.0
        for u in range(s):
            out[i, atoms[u]] = gamma[u]
            gamma[u] = 0.0
        steps[i] = s
        residual_sq[i] = max(error, 0.0)


@torch.no_grad()  # a greedy selection: the codes carry no gradient
def compiled_omp(
    x: torch.Tensor, dictionary: torch.Tensor, k: int, eps: float | None, threads: int
) -> tuple[torch.Tensor, int, torch.Tensor]:
    """As ``omp.batch_omp`` for CPU signals: codes, the most atoms any signal took, and the
    squared residual norms ‖x − D h‖²."""
    n, n_atoms = x.shape[0], dictionary.shape[1]
    gram = (dictionary.T @ dictionary).contiguous().numpy()
    codes = torch.empty(n, n_atoms, dtype=x.dtype)
    residual_sq = np.empty(n)
    steps = np.zeros(n, dtype=np.int64)
    rounding = float(torch.finfo(x.dtype).eps)
    eps_sq = -1.0 if eps is None else eps * eps

    def run(part: slice) -> None:
        xs = x[part]
        c = (xs @ dictionary).numpy()
        energy = (xs * xs).sum(1).numpy()
        out = codes[part].numpy()
        omp_rows(gram, c, energy, k, eps_sq, rounding, out, steps[part], residual_sq[part])

    over_threads(run, n, threads, x.device)
    return codes, int(steps.max()) if n else 0, torch.from_numpy(residual_sq).to(x.dtype)
