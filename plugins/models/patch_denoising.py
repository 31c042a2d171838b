"""Denoise a whole image with a patch dictionary (Elad and Aharon 2006, eq. (12)–(13)).

Every overlapping p×p patch of the noisy image y is coded with an error-constrained pursuit,
    min ‖α‖₀  s.t.  ‖R y − D α‖₂ ≤ ε,   ε = C σ √(p²)   (C ≈ 1.15),
and the image is the weighted average of the coded patches with the noisy image:
    x̂ = (λ I + Σ Rᵀ R)⁻¹ (λ y + Σ Rᵀ D α),   λ = ``noisy_weight`` / (255 σ)
(the paper's λ = 30/σ for σ in grey levels). The pursuit is the ``omp`` pursuit for the problem
L0Error(ε), with at most p²/2 atoms per patch (the cap of Elad and Aharon's code).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from sparseland import registry
from sparseland.interfaces import Preprocessor
from sparseland.plugins.preprocess.patches import extract_patches
from sparseland.problems import L0Error

Coder = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
CHUNK = 65536


def error_constrained_coder(x: torch.Tensor, D: torch.Tensor, eps: float) -> torch.Tensor:
    """OMP until ‖x − D α‖₂ ≤ ε, at most m/2 atoms (the cap of Elad and Aharon's code)."""
    cap = min(max(1, x.shape[1] // 2), D.shape[1])
    pursuit = registry.build("pursuit", "omp", k=cap).with_problem(L0Error(eps))
    codes: torch.Tensor = pursuit(x, D)
    return codes


def denoise_with_patches(
    noisy: torch.Tensor,
    sigma: float,
    D: torch.Tensor,
    patch_size: int,
    preprocessor: Preprocessor | None = None,
    gain: float = 1.15,
    noisy_weight: float = 30.0,
    stride: int = 1,
    coder: Coder | None = None,
) -> torch.Tensor:
    """The denoised image (H, W) from ``noisy`` (H, W) in [0, 1] with noise std ``sigma``."""
    coder = coder or error_constrained_coder
    patches = extract_patches(noisy, patch_size, stride)
    eps = gain * sigma * math.sqrt(patches.shape[1])
    coded = []
    for raw in patches.split(CHUNK):
        x = preprocessor.transform(raw) if preprocessor is not None else raw
        x_hat = coder(x, D, eps) @ D.T
        coded.append(preprocessor.inverse_transform(x_hat, raw=raw) if preprocessor else x_hat)
    h, w = noisy.shape
    estimate = torch.cat(coded)
    summed = F.fold(estimate.T[None], (h, w), kernel_size=patch_size, stride=stride)[0, 0]
    counts = F.fold(
        torch.ones_like(estimate.T[None]), (h, w), kernel_size=patch_size, stride=stride
    )[0, 0]
    lam = noisy_weight / (255.0 * sigma) if sigma > 0 else 0.0
    return (lam * noisy + summed) / (lam + counts).clamp_min(1e-12)
