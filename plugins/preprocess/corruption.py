"""Corruptions as preprocessors: what a denoiser is trained and tested to undo.

``transform`` corrupts (fresh randomness on every call, from torch's global generator, which
the runner seeds); ``inverse_transform`` is the identity: noise cannot be undone by the
preprocessor, that is the model's job. Signals are rows (n, d) of square patches or images
(n, ..., H, W) with values in [0, 1]. Noise models as in Forsyth's notes on denoising:
  * gaussian_noise: y = x + σ·ε, ε ~ N(0, 1), σ given on the 0–255 scale (σ = 25 → 25/255);
  * poisson_noise:  y = P(peak·x) / peak, P Poisson (shot noise: variance x/peak);
  * knockout:       random square blocks of pixels set to ``fill`` (each block on a grid of
    ``block`` × ``block`` pixels independently with probability ``fraction``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sparseland import PluginConfig, option, register_preprocessor
from sparseland.errors import ShapeError, check
from sparseland.interfaces import Preprocessor, contracts


class Corruption(Preprocessor):
    #: The transformed signals are corrupted versions of ``raw`` (denoisers train on the pair).
    corrupts = True
    provides = (contracts.Corruption,)

    def inverse_transform(self, y: torch.Tensor, raw: torch.Tensor | None = None) -> torch.Tensor:
        return y


@dataclass
class GaussianNoiseConfig(PluginConfig):
    sigma: float = option(25.0, "noise standard deviation on the data_range scale")
    data_range: float = option(255.0, "σ is given on this scale; the signals are on [0, 1]")
    clip: bool = option(False, "clip the noisy signals to [0, 1]")

    def __post_init__(self) -> None:
        check(self.sigma >= 0, "sigma", f"must be >= 0, got {self.sigma}")
        check(self.data_range > 0, "data_range", f"must be > 0, got {self.data_range}")


@register_preprocessor("gaussian_noise", config=GaussianNoiseConfig)
class GaussianNoise(Corruption):
    def transform(self, x: torch.Tensor) -> torch.Tensor:
        y = x + (self.config.sigma / self.config.data_range) * torch.randn_like(x)
        return y.clamp(0.0, 1.0) if self.config.clip else y


@dataclass
class PoissonNoiseConfig(PluginConfig):
    peak: float = option(30.0, "photons at intensity 1: larger is less noisy")

    def __post_init__(self) -> None:
        check(self.peak > 0, "peak", f"must be > 0, got {self.peak}")


@register_preprocessor("poisson_noise", config=PoissonNoiseConfig)
class PoissonNoise(Corruption):
    def transform(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x < 0).any()):
            raise ShapeError(
                "poisson_noise needs intensities >= 0; apply it before any "
                "centring or whitening (preprocess=poisson_noise on raw data)"
            )
        return torch.poisson(x * self.config.peak) / self.config.peak


@dataclass
class KnockoutConfig(PluginConfig):
    block: int = option(4, "side of a knocked-out block, in pixels")
    fraction: float = option(0.25, "probability that a block is knocked out")
    fill: float = option(0.0, "value of the knocked-out pixels")

    def __post_init__(self) -> None:
        check(self.block >= 1, "block", f"must be >= 1, got {self.block}")
        check(0 <= self.fraction <= 1, "fraction", f"must be in [0, 1], got {self.fraction}")


@register_preprocessor("knockout", config=KnockoutConfig)
class BlockKnockout(Corruption):
    def knockout_mask(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """True where a pixel is knocked out; ``shape`` is (n, ..., H, W)."""
        b = self.config.block
        *lead, h, w = shape
        grid = (*lead, math.ceil(h / b), math.ceil(w / b))
        blocks = torch.rand(grid, device=device) < self.config.fraction
        pixels = blocks.repeat_interleave(b, dim=-2).repeat_interleave(b, dim=-1)
        return pixels[..., :h, :w]

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        images = x
        if x.ndim == 2:
            side = math.isqrt(x.shape[1])
            if side * side != x.shape[1]:
                raise ShapeError(
                    f"knockout needs square patches or images, got rows of size "
                    f"{x.shape[1]}; use square patches or an image dataset"
                )
            images = x.reshape(x.shape[0], side, side)
        mask = self.knockout_mask(tuple(images.shape), images.device)
        out = torch.where(mask, torch.full_like(images, self.config.fill), images)
        return out.reshape(x.shape)
