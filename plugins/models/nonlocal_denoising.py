"""Non-local sparse denoising: groups of similar patches coded with one shared support.

In the spirit of LSSC (Mairal, Bach, Ponce, Sapiro and Zisserman, ICCV 2009).
Stage 1:
1. block matching on the noisy image groups the ``group_size`` patches nearest to each
   reference patch on a grid (block_matching.py);
2. the noisy patches of each group, each less its mean (DC), are coded together by
   simultaneous OMP over the dictionary D until the group's squared error is within
       ε = (gain · σ)² · n · m       (n pixels per patch, m patches per group),
   i.e. the error expected of the noise alone, capped at n/2 atoms;
3. every coded patch is put back where it came from, weighted by 1 / (1 + atoms of its group)
   (groups that need few atoms are more certainly noise-free, as in BM3D's aggregation), and
   the weighted average is blended with the noisy image:
       x̂ = (λ y + Σ w Rᵀ p̂) / (λ + Σ w Rᵀ 1),  λ = noisy_weight / (255 σ).
Stage 2 matches blocks again on the first estimate, whose distances are far less disturbed by
the noise, and filters the noisy patches of the new groups on the atoms that simultaneous OMP
picks for the first estimate's group, collaboratively across the group (collaborative_wiener.py);
the same aggregation follows with that stage's weights.
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
    window: int = 10  # search ±window pixels around each reference patch
    step: int = 3  # reference patches on a grid of this step
    gain: float = 0.9  # first stage: ε = (gain σ)² n m
    gain2: float = 0.1  # second stage: ε of the pilot's support
    wiener: bool = True  # second stage: collaborative Wiener filter (else: code the noisy again)
    wiener_basis: str = "dct"  # "dct": the complete 2-D DCT; "atoms": SOMP's atoms for the pilot
    noisy_weight: float = 0.0
    stages: int = 2


def _pixel_offsets(patch_size: int, width: int, device: torch.device) -> torch.Tensor:
    i = torch.arange(patch_size, device=device)
    return (i[:, None] * width + i[None, :]).reshape(-1)


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
    flat, _ = match_blocks(guide, patch_size, settings.group_size, settings.window, settings.step)
    patches = extract_patches(noisy, patch_size)  # (positions, n)
    pilots = extract_patches(guide, patch_size) if wiener else patches
    n = patches.shape[1]
    eps = (gain * sigma) ** 2 * n * flat.shape[1]
    offsets = _pixel_offsets(patch_size, w, noisy.device)
    total = torch.zeros(h * w, dtype=noisy.dtype, device=noisy.device)
    weights = torch.zeros_like(total)
    D = D.to(noisy.dtype)
    for start in range(0, flat.shape[0], GROUP_CHUNK):
        idx = flat[start : start + GROUP_CHUNK]
        group = patches[idx]  # (G, m, n)
        if wiener:
            atoms = D if settings.wiener_basis == "atoms" else None
            estimate, group_weight = wiener_groups(group, pilots[idx], atoms, sigma, gain)
        else:
            dc = group.mean(dim=2, keepdim=True)
            codes, count = simultaneous_omp(group - dc, D, max(1, n // 2), eps)
            estimate = codes @ D.T + dc
            group_weight = 1.0 / (1.0 + count.to(noisy.dtype))
        weight = group_weight[:, None, None].expand_as(estimate)
        corner = (idx // cols) * w + idx % cols  # top-left pixel of each patch
        pixels = (corner[:, :, None] + offsets).reshape(-1)
        total.index_add_(0, pixels, (weight * estimate).reshape(-1))
        weights.index_add_(0, pixels, weight.reshape(-1))
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
