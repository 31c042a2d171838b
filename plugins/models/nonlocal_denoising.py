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
The Wiener factor's μ² is chosen per image: stage 2 filters every group with each candidate μ²
at once, and the estimate with the lowest Monte-Carlo SURE (monte_carlo_sure.py; the whole
method run again on the image plus a small random perturbation) is returned. The pilot depends
on the noise, so the plain SURE of a Wiener filter with a fixed pilot would always favour the
smallest μ²; the Monte-Carlo divergence includes the pilot's dependence. With ε = 0.03σ,
μ² = (0.5, 0.7, 1.0, 1.4, 2.0) · σ/25, same dictionary, true mean squared errors against
Monte-Carlo SURE (grey levels²): brick at σ = 15, 12.93 / 12.05 / 11.44 / 11.11 / 10.97 against
12.99 / 12.03 / 11.36 / 10.99 / 10.82 (chosen: 2.0, the best; a fixed 0.7 loses 0.41 dB); moon
at σ = 15, 9.94 / 9.70 / 9.63 / 9.68 / 9.83 against 9.91 / 9.73 / 9.69 / 9.76 / 9.90 (1.0, the
best); camera at σ = 50, 108.1 / 107.8 / 108.5 / 109.9 / 111.9 against 100.4 / 101.0 / 102.7 /
105.0 / 107.8 (0.5, 0.015 dB below the best).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from sparseland.plugins.models.block_matching import match_blocks
from sparseland.plugins.models.collaborative_wiener import wiener_groups
from sparseland.plugins.models.monte_carlo_sure import monte_carlo_sure
from sparseland.plugins.preprocess.patches import extract_patches
from sparseland.plugins.pursuit.group_coding import simultaneous_omp

GROUP_CHUNK = 4096  # groups coded at once (bounds the memory of the correlations)
log = logging.getLogger(__name__)


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
    # is 0.4 at every σ with its own first stage. Several values: the one with the lowest
    # Monte-Carlo SURE per image
    wiener_mu2: tuple[float, ...] = (0.5, 0.7, 1.0, 1.4, 2.0)
    sure_probe: float = 0.03  # Monte-Carlo SURE's perturbation ε, in units of σ
    sure_seed: int = 0  # its random probe

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
    mu2: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted sums of the coded patches and of their weights over the image, (K, H, W) each:
    K = 1 in stage 1, one per Wiener factor μ² in ``mu2`` (K,) in the Wiener stage."""
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
    n_out = mu2.shape[0] if wiener and mu2 is not None else 1
    total = torch.zeros(n_out, h * w, dtype=noisy.dtype, device=noisy.device)
    weights = torch.zeros_like(total)
    D = D.to(noisy.dtype)
    chunk = max(1, GROUP_CHUNK // n_out)
    chunks = [
        part[start : start + chunk]
        for part in split_by_size(flat, distances, limit)
        for start in range(0, part.shape[0], chunk)
    ]
    for idx in chunks:
        group = patches[idx]  # (G, m, n)
        if wiener:
            atoms = D if settings.wiener_basis == "atoms" else None
            factors = mu2 if mu2 is not None else torch.tensor(settings.wiener_mu2[:1])
            estimate, group_weight = wiener_groups(
                group,
                pilots[idx],
                atoms,
                sigma,
                gain,
                settings.group_transform,
                factors.to(noisy.dtype) * sigma * 255.0 / 25.0,
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
        estimate = estimate.reshape(n_out, *group.shape)
        weight = group_weight.reshape(n_out, -1)[:, :, None, None] * window_weight
        corner = (idx // cols) * w + idx % cols  # top-left pixel of each patch
        pixels = (corner[:, :, None] + offsets).reshape(-1)
        total.index_add_(1, pixels, (weight * estimate).reshape(n_out, -1))
        weights.index_add_(1, pixels, weight.expand_as(estimate).reshape(n_out, -1))
    return total.reshape(n_out, h, w), weights.reshape(n_out, h, w)


@torch.no_grad()
def denoise_candidates(
    noisy: torch.Tensor,
    sigma: float,
    D: torch.Tensor,
    patch_size: int,
    settings: NonlocalSettings,
) -> torch.Tensor:
    """One estimate per Wiener factor in ``settings.wiener_mu2`` (K, H, W); (1, H, W) with a
    single stage."""
    s = settings
    lam = s.noisy_weight / (255.0 * sigma) if sigma > 0 else 0.0
    factors = torch.tensor(s.wiener_mu2, dtype=noisy.dtype, device=noisy.device)
    total, weights = code_groups(noisy, noisy, sigma, D, patch_size, s, s.gain)
    estimate = (lam * noisy + total) / (lam + weights).clamp_min(1e-12)
    for _ in range(1, s.stages):
        # the first Wiener stage filters with every μ²; a later one each with its own pilot's
        parts = [
            code_groups(noisy, pilot, sigma, D, patch_size, s, s.gain2, s.wiener, mu)
            for pilot, mu in zip(
                estimate, factors[:, None] if estimate.shape[0] > 1 else factors[None]
            )
        ]
        total = torch.cat([part[0] for part in parts])
        weights = torch.cat([part[1] for part in parts])
        estimate = (lam * noisy + total) / (lam + weights).clamp_min(1e-12)
    return estimate


@torch.no_grad()
def denoise_nonlocal(
    noisy: torch.Tensor,
    sigma: float,
    D: torch.Tensor,
    patch_size: int,
    settings: NonlocalSettings | None = None,
    report: dict[str, float] | None = None,
) -> torch.Tensor:
    """The denoised image (H, W) from ``noisy`` (H, W) in [0, 1] with noise std ``sigma``;
    with several Wiener factors, the estimate with the lowest Monte-Carlo SURE, whose factor
    and risk per pixel (grey levels²) go into ``report`` when one is given."""
    s = settings or NonlocalSettings()
    if s.stages == 1 or not s.wiener or len(s.wiener_mu2) == 1 or sigma <= 0:
        return denoise_candidates(noisy, sigma, D, patch_size, s)[0]
    estimates, risk = monte_carlo_sure(
        lambda y: denoise_candidates(y, sigma, D, patch_size, s),
        noisy,
        sigma,
        s.sure_probe,
        s.sure_seed,
    )
    best = int(risk.argmin())
    if report is not None:
        report["wiener_mu2"] = s.wiener_mu2[best]
        report["sure_mse"] = float(risk[best]) * 255.0**2
    log.info(
        "Wiener factor μ² = %s · σ/25 chosen by Monte-Carlo SURE (risks per pixel, grey "
        "levels²: %s)",
        s.wiener_mu2[best],
        ", ".join(f"{mu}: {r * 255.0**2:.3f}" for mu, r in zip(s.wiener_mu2, risk.tolist())),
    )
    return estimates[best]
