"""Collaborative filtering of groups of patches on a learned basis: the Wiener filter of the
non-local denoiser's second stage and the hard thresholding of its first.

For a group of m noisy patches X (m × n) and the same patches of the first estimate P (the
pilot), each less its mean:
1. simultaneous OMP on the pilot group picks the atoms I that represent it within
   ε = (gain · σ)² · n · m; the constant atom 1/√n is added to carry the patches' means;
2. B = [1/√n, D_I] is orthonormalised, Q = B L⁻ᵀ with L Lᵀ = BᵀB (Cholesky), so that the
   coefficients Z = X Q of white noise of std σ are white noise of std σ again;
3. a 1-D orthonormal DCT T along the group (over the m patches) turns Z into the spectrum of the
   group in a 3-D basis (atoms × group frequencies), as in BM3D's collaborative filtering, and
   each entry is shrunk by the empirical Wiener factor of the pilot:
       Ẑ = Tᵀ [ W ⊙ (T Z) ],   W = (T Z_p)² / ((T Z_p)² + μ² σ²);
4. the patches Ẑ Qᵀ are aggregated with the weight 1 / Σ W² of their group (BM3D's weight,
   up to σ², which is common to all groups).
Several μ² at once (a tensor (K,)) give K filtered versions of every group from one transform
(the non-local denoiser chooses among them by Monte-Carlo SURE).
Without a pilot the atoms are chosen on the noisy group itself and W keeps the coefficients
above λσ (hard thresholding, BM3D's first stage), weight 1 / (coefficients kept). T is the DCT
or, as in BM3D, the Haar transform (groups of a power of 2).
"""

from __future__ import annotations

import math

import torch

from sparseland.plugins.pursuit.group_coding import simultaneous_omp_support


def dct_matrix(size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The orthonormal DCT-II matrix (size × size), rows the frequencies."""
    i = torch.arange(size, dtype=dtype, device=device)
    t = torch.cos(math.pi * (i[None, :] + 0.5) * i[:, None] / size) * math.sqrt(2.0 / size)
    t[0] /= math.sqrt(2.0)
    return t


def haar_matrix(size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The orthonormal Haar matrix (size × size, size a power of 2), rows the basis vectors;
    any other size: the DCT."""
    if size & (size - 1):
        return dct_matrix(size, dtype, device)
    h = torch.ones(1, 1, dtype=dtype, device=device)
    while h.shape[0] < size:
        eye = torch.eye(h.shape[0], dtype=dtype, device=device)
        h = torch.cat(
            [
                torch.kron(h, torch.ones(1, 2, dtype=dtype, device=device)),
                torch.kron(eye, torch.tensor([[1.0, -1.0]], dtype=dtype, device=device)),
            ]
        )
        h = h / h.norm(dim=1, keepdim=True)
    return h


GROUP_TRANSFORMS = {"dct": dct_matrix, "haar": haar_matrix}


def separable_dct(patch_size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The orthonormal 2-D DCT of p×p patches (p² × p²), rows the basis vectors (DC first)."""
    t = dct_matrix(patch_size, dtype, device)
    return torch.kron(t, t)


def _shrink(
    noisy: torch.Tensor,
    pilot: torch.Tensor | None,
    q: torch.Tensor,
    live: torch.Tensor,
    sigma: float,
    transform: str = "dct",
    mu2: float | torch.Tensor = 1.0,
    lam: float = 2.7,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shrink the group spectra on the orthonormal rows ``q`` ((G,) k × n or k × n): by the
    empirical Wiener factor of the ``pilot``, or, ``pilot`` None, by hard thresholding at
    lam · σ (BM3D's first stage), the group's mean (first coefficient) always kept. A tensor
    ``mu2`` (K,) puts a leading K on the patches (K, G, m, n) and weights (K, G)."""
    m = noisy.shape[1]
    t = GROUP_TRANSFORMS[transform](m, noisy.dtype, noisy.device)
    z = t @ (noisy @ q.transpose(-1, -2))  # (G, m, k): group spectrum of the noisy group
    if pilot is None:
        shrink = (z.abs() > lam * sigma).to(z.dtype)
        shrink[:, 0, 0] = 1.0
        shrink = shrink * live[..., None, :]
        weight = 1.0 / shrink.sum(dim=(1, 2)).clamp_min(1.0)
    else:
        zp = t @ (pilot @ q.transpose(-1, -2))
        power = zp * zp
        noise = torch.as_tensor(mu2, dtype=z.dtype, device=z.device)[..., None, None, None]
        shrink = power / (power + noise * sigma * sigma) * live[..., None, :]
        weight = 1.0 / shrink.pow(2).sum(dim=(-2, -1)).clamp_min(1e-12)
    patches = (t.T @ (shrink * z)) @ q
    return patches, weight


@torch.no_grad()
def wiener_groups(
    noisy: torch.Tensor,
    pilot: torch.Tensor | None,
    D: torch.Tensor | None,
    sigma: float,
    gain: float,
    transform: str = "dct",
    mu2: float | torch.Tensor = 1.0,
    lam: float = 2.7,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Filtered patches (G, m, n) of the groups ``noisy`` (G, m, n) with the ``pilot`` groups,
    and the aggregation weight of each group (G,); with a tensor ``mu2`` (K,), (K, G, m, n) and
    (K, G), one per μ². ``D`` None: the complete 2-D DCT instead of atoms chosen from a
    dictionary."""
    n_groups, m, n = noisy.shape
    dtype, device = noisy.dtype, noisy.device
    if D is None:
        side = math.isqrt(n)
        live = torch.ones(n, dtype=dtype, device=device)
        return _shrink(
            noisy, pilot, separable_dct(side, dtype, device), live, sigma, transform, mu2, lam
        )
    guide = noisy if pilot is None else pilot
    pilot_ac = guide - guide.mean(dim=2, keepdim=True)
    eps = (gain * sigma) ** 2 * n * m
    support, _, count = simultaneous_omp_support(pilot_ac, D, n - 1, eps)
    k = support.shape[1]
    used = torch.arange(k, device=device)[None] < count[:, None]  # (G, k)
    atoms = D.T[support] * used[:, :, None]  # (G, k, n); unused slots are zero
    flat = torch.full((n_groups, 1, n), 1.0 / math.sqrt(n), dtype=dtype, device=device)
    basis = torch.cat([flat, atoms], dim=1)  # (G, 1 + k, n): rows are the atoms
    live = torch.cat([torch.ones(n_groups, 1, dtype=torch.bool, device=device), used], dim=1)
    gram = basis @ basis.transpose(1, 2)
    gram = gram + torch.diag_embed((~live).to(dtype))  # unused slots: identity, so L is regular
    chol, _ = torch.linalg.cholesky_ex(gram)
    # Q = L⁻¹ B (rows orthonormal on the live slots)
    q = torch.linalg.solve_triangular(chol, basis, upper=False)
    return _shrink(noisy, pilot, q, live.to(dtype), sigma, transform, mu2, lam)
