"""Non-local sparse denoising: groups of similar patches coded with one shared support.

In the spirit of LSSC (Mairal, Bach, Ponce, Sapiro and Zisserman, ICCV 2009), with BM3D's
two-stage structure (Dabov, Foi, Katkovnik and Egiazarian 2007).
Stage 1:
1. block matching on the noisy image groups the ``group_size`` patches nearest to each
   reference patch on a grid (block_matching.py);
2. ``first_stage="threshold"``: simultaneous OMP picks the atoms of D that represent the
   group's patches, each less its mean, within ε = (gain · σ)² · n · m (n pixels per patch,
   m patches per group); on those atoms, orthonormalised, with the constant atom, times a 1-D
   Haar transform along the group, the group's spectrum is hard thresholded at λσ
   (collaborative_wiener.py); weight 1 / (coefficients kept), as BM3D's first stage.
   ``first_stage="somp"``: the group is coded by simultaneous OMP until its squared error is
   within ε (capped at n/2 atoms); weight 1 / (1 + atoms of the group);
3. every patch is put back where it came from, its pixels weighted by its group's weight times
   a Kaiser window (β = ``kaiser_beta``; ``wiener_kaiser_beta`` in stages 2 and 3), and the
   weighted average is blended with the noisy image:
       x̂ = (λ y + Σ w Rᵀ p̂) / (λ + Σ w Rᵀ 1),  λ = noisy_weight / (255 σ).
Stage 2 matches blocks again on the first estimate (BM3D's Wiener stage: groups of up to 32
within ±19 pixels, cut to the patches within τ of the reference, a power of 2 of them) and
filters the noisy groups by the empirical Wiener factor of the first estimate's groups
(collaborative_wiener.py); the same aggregation follows. A third stage, if asked, repeats it
with the second estimate as the pilot.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparseland.plugins.models.block_matching import match_blocks
from sparseland.plugins.models.collaborative_wiener import wiener_groups
from sparseland.plugins.preprocess.patches import extract_patches
from sparseland.plugins.pursuit.group_coding import simultaneous_omp

GROUP_CHUNK = 4096  # groups coded at once (bounds the memory of the correlations)


@dataclass
class NonlocalSettings:
    group_size: int = 16
    window: int = 19  # search ±window pixels around each reference patch
    step: int = 2  # reference patches on a grid of this step
    gain: float = 0.7  # first stage: ε = (gain σ)² n m
    gain2: float = 0.1  # second stage: ε of the pilot's support
    wiener: bool = True  # second stage: collaborative Wiener filter (else: code the noisy again)
    wiener_basis: str = "dct"  # "dct": the complete 2-D DCT; "atoms": SOMP's atoms for the pilot
    noisy_weight: float = 0.0
    stages: int = 2  # 1: group coding; 2: + Wiener on the first estimate; 3: + Wiener again
    wiener_group_size: int = 32  # stages 2 and 3: patches per group
    wiener_window: int = 19  # stages 2 and 3: search ±window pixels
    wiener_step: int = 2  # stages 2 and 3: reference grid step
    kaiser_beta: float = 2.0  # stage 1: Kaiser window of the aggregation; 0: flat
    wiener_kaiser_beta: float = 0.0  # stages 2 and 3: the same
    # stages 2 and 3 keep the patches within this mean squared distance per pixel of the
    # reference (grey levels², BM3D's τ_match = 400), a power of 2 of them; 0: all
    wiener_threshold: float = 400.0
    group_transform: str = "haar"  # stages 2 and 3: 1-D transform along the group, dct or haar
    first_stage: str = "threshold"  # "somp"; "threshold": hard thresholding of the group spectra
    threshold_basis: str = "atoms"  # first_stage threshold: "atoms" (SOMP's support) or "dct"
    threshold_lam: float = 2.7  # first_stage threshold: keep |coefficient| > lam σ
    code_threshold: float = 0.0  # stage 1: codes below code_threshold · σ are zeroed
    # Wiener factor P / (P + μ² σ²), μ² = wiener_mu2 · σ / 25 (σ in grey levels); BM3D's μ²
    # is 0.4 at every σ with its own first stage
    wiener_mu2: float = 0.7

    def matching(self, wiener: bool) -> tuple[int, int, int]:
        """Group size, search window and reference step of a stage."""
        if wiener:
            return self.wiener_group_size, self.wiener_window, self.wiener_step
        return self.group_size, self.window, self.step


def _pixel_offsets(patch_size: int, width: int, device: torch.device) -> torch.Tensor:
    i = torch.arange(patch_size, device=device)
    return (i[:, None] * width + i[None, :]).reshape(-1)


def kaiser_patch(
    patch_size: int, beta: float, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """The separable Kaiser window over a patch's pixels (n,), BM3D's aggregation window."""
    if beta <= 0:
        return torch.ones(patch_size * patch_size, dtype=dtype, device=device)
    k = torch.kaiser_window(patch_size, periodic=False, beta=beta, dtype=dtype, device=device)
    return (k[:, None] * k[None, :]).reshape(-1)


def split_by_size(flat: torch.Tensor, distances: torch.Tensor, limit: float) -> list[torch.Tensor]:
    """The groups (n_refs, m) cut to the patches within ``limit`` of their reference, rounded
    down to a power of 2 (BM3D), as one (G_s, s) tensor per size s; ``limit`` ≤ 0: as they are."""
    if limit <= 0:
        return [flat]
    count = (distances <= limit).sum(dim=1).clamp_min(1)
    size = torch.pow(2, torch.floor(torch.log2(count.double()))).long()
    return [flat[size == s, :s] for s in torch.unique(size).tolist()]


@torch.no_grad()
def code_groups(
    noisy: torch.Tensor,
    guide: torch.Tensor,
    sigma: float,
    D: torch.Tensor,
    patch_size: int,
    settings: NonlocalSettings,
    gain: float,
    wiener: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted sums of the coded patches and of their weights over the image (H, W) each."""
    h, w = noisy.shape
    cols = w - patch_size + 1
    group_size, window, step = settings.matching(wiener)
    flat, distances = match_blocks(guide, patch_size, group_size, window, step)
    patches = extract_patches(noisy, patch_size)  # (positions, n)
    pilots = extract_patches(guide, patch_size) if wiener else patches
    n = patches.shape[1]
    limit = settings.wiener_threshold / 255.0**2 * n if wiener else 0.0
    offsets = _pixel_offsets(patch_size, w, noisy.device)
    beta = settings.wiener_kaiser_beta if wiener else settings.kaiser_beta
    window_weight = kaiser_patch(patch_size, beta, noisy.dtype, noisy.device)
    total = torch.zeros(h * w, dtype=noisy.dtype, device=noisy.device)
    weights = torch.zeros_like(total)
    D = D.to(noisy.dtype)
    chunks = [
        part[start : start + GROUP_CHUNK]
        for part in split_by_size(flat, distances, limit)
        for start in range(0, part.shape[0], GROUP_CHUNK)
    ]
    for idx in chunks:
        group = patches[idx]  # (G, m, n)
        if wiener:
            atoms = D if settings.wiener_basis == "atoms" else None
            estimate, group_weight = wiener_groups(
                group,
                pilots[idx],
                atoms,
                sigma,
                gain,
                settings.group_transform,
                settings.wiener_mu2 * sigma * 255.0 / 25.0,
            )
        elif settings.first_stage == "threshold":
            atoms = D if settings.threshold_basis == "atoms" else None
            estimate, group_weight = wiener_groups(
                group,
                None,
                atoms,
                sigma,
                gain,
                settings.group_transform,
                lam=settings.threshold_lam,
            )
        else:
            eps = (gain * sigma) ** 2 * n * idx.shape[1]
            dc = group.mean(dim=2, keepdim=True)
            codes, count = simultaneous_omp(group - dc, D, max(1, n // 2), eps)
            if settings.code_threshold > 0:
                codes = codes * (codes.abs() > settings.code_threshold * sigma)
            estimate = codes @ D.T + dc
            group_weight = 1.0 / (1.0 + count.to(noisy.dtype))
        weight = group_weight[:, None, None] * window_weight
        corner = (idx // cols) * w + idx % cols  # top-left pixel of each patch
        pixels = (corner[:, :, None] + offsets).reshape(-1)
        total.index_add_(0, pixels, (weight * estimate).reshape(-1))
        weights.index_add_(0, pixels, weight.expand_as(estimate).reshape(-1))
    return total.reshape(h, w), weights.reshape(h, w)


@torch.no_grad()
def denoise_nonlocal(
    noisy: torch.Tensor,
    sigma: float,
    D: torch.Tensor,
    patch_size: int,
    settings: NonlocalSettings | None = None,
) -> torch.Tensor:
    """The denoised image (H, W) from ``noisy`` (H, W) in [0, 1] with noise std ``sigma``."""
    s = settings or NonlocalSettings()
    lam = s.noisy_weight / (255.0 * sigma) if sigma > 0 else 0.0
    estimate = noisy
    for stage in range(s.stages):
        gain = s.gain if stage == 0 else s.gain2
        wiener = s.wiener and stage > 0
        total, weights = code_groups(noisy, estimate, sigma, D, patch_size, s, gain, wiener)
        estimate = (lam * noisy + total) / (lam + weights).clamp_min(1e-12)
    return estimate
