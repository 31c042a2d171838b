"""Monte-Carlo SURE: the mean squared error of a black-box denoiser estimated without the clean
image (Ramani, Blu and Unser, "Monte-Carlo SURE: a black-box optimization of regularization
parameters for general denoising algorithms", IEEE TIP 17(9), 2008).

For y = x + n with white Gaussian noise of std σ over N pixels, Stein's unbiased risk estimate
of a denoiser f is
    SURE(f) = ‖f(y) − y‖² / N − σ² + 2σ² div f(y) / N,
and the divergence of any f is estimated from one more evaluation at a random perturbation
(the paper's Monte-Carlo estimate): div f(y) ≈ bᵀ (f(y + εb) − f(y)) / ε with b ~ N(0, I) and
a small ε.
``denoise`` may return several estimates at once (K, ...), e.g. one per value of a parameter;
each gets its own risk, and the one with the lowest is the parameter's data-driven choice.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import torch


@torch.no_grad()
def monte_carlo_sure(
    denoise: Callable[[torch.Tensor], torch.Tensor],
    noisy: torch.Tensor,
    sigma: float,
    probe_scale: float = 0.1,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The estimates ``denoise(noisy)`` (K, *noisy.shape) and their SURE per pixel (K,).

    ``probe_scale`` sets ε = probe_scale · σ. The probe b must be independent of the noise:
    drawn from a generator seeded by ``seed`` and a checksum of the noisy image, it cannot
    repeat the noise even when that was drawn with the same seed (a probe equal to the noise
    would make the divergence, and so the choice, wrong), and the risks stay reproducible."""
    estimates = denoise(noisy)
    content = zlib.crc32(noisy.detach().cpu().contiguous().numpy().tobytes())
    rng = np.random.default_rng([seed, content])
    probe = torch.from_numpy(rng.standard_normal(tuple(noisy.shape)))
    probe = probe.to(dtype=noisy.dtype, device=noisy.device)
    eps = probe_scale * sigma
    moved = denoise(noisy + eps * probe)
    n = noisy.numel()
    flat = estimates.reshape(-1, n).double()
    divergence = ((moved.reshape(-1, n).double() - flat) * probe.reshape(1, n)).sum(1) / eps
    residual = (flat - noisy.reshape(1, n).double()).pow(2).sum(1)
    risk = (residual + 2.0 * sigma**2 * divergence) / n - sigma**2
    return estimates, risk
