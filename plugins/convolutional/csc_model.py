"""Model ``csc``: convolutional dictionary learning from images, and whole-image denoising.

Each training step codes the high-pass part of a batch of images with the run's pursuit
(``csc_admm``, or ``fista``/``ista`` on the same operator), then takes ``filter_steps`` projected
FISTA steps on the filters for ½‖Σ_k d_k * z_k − s‖² subject to ‖d_k‖₂ ≤ 1 (the CDL problem,
Wohlberg 2016 §V; Garcia-Cardona and Wohlberg 2018 eq. 4). The step is 1/L with
L = max_ω Σ_{n,k} |ẑ_{n,k}(ω)|², a bound on the Lipschitz constant of the filter gradient.
Images are split as s = s_low + s_high with a Tikhonov low-pass (Wohlberg 2016 §VI): the
sparse model codes s_high; ``denoise_image`` adds back the low-pass of the noisy image.
The learner plugin of the run is not used: the filter update above is the CDL learner.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from sparseland import PluginConfig, option, register_model
from sparseland.errors import ConfigError, NonFiniteError, check
from sparseland.interfaces import ModelContext, Pursuit, SparselandModule, contracts
from sparseland.momentum import next_momentum
from sparseland.plugins.convolutional.conv_dictionary import (
    BOUNDARIES,
    ConvDictionary,
    normalize_filters,
)
from sparseland.plugins.convolutional.mlcsc_model import as_images
from sparseland.problems import Lasso


@dataclass
class CSCConfig(PluginConfig):
    n_filters: int = option(32, "number of convolutional filters (atoms)")
    filter_size: int = option(8, "side of the square filters, in pixels")
    boundary: str = option("circular", "boundary of the convolutions: circular or full")
    highpass: float = option(5.0, "Tikhonov low-pass weight (0: code the images as they are)")
    filter_steps: int = option(10, "projected FISTA steps on the filters per batch")
    denoise_lam: float = option(0.0, "λ for denoise_image; 0: denoise_scale · σ")
    denoise_scale: float = option(
        2.5, "λ = denoise_scale · σ when denoise_lam = 0 (2.5: best of 1.5, 2.5, 3.5 on camera)"
    )
    denoise_adapt: int = option(0, "dictionary-learning rounds on the noisy image before denoising")
    denoise_highpass: float = option(0.0, "Tikhonov weight of the denoising split (0: highpass)")

    def __post_init__(self) -> None:
        check(self.n_filters >= 1, "n_filters", f"must be >= 1, got {self.n_filters}")
        check(self.filter_size >= 1, "filter_size", f"must be >= 1, got {self.filter_size}")
        check(
            self.boundary in BOUNDARIES,
            "boundary",
            f"'{self.boundary}' is not a boundary",
            f"choose one of {', '.join(BOUNDARIES)}",
        )
        check(self.highpass >= 0, "highpass", f"must be >= 0, got {self.highpass}")
        check(self.filter_steps >= 1, "filter_steps", f"must be >= 1, got {self.filter_steps}")
        check(self.denoise_lam >= 0, "denoise_lam", f"must be >= 0, got {self.denoise_lam}")
        check(self.denoise_highpass >= 0, "denoise_highpass", "must be >= 0")


def symmetric_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Mirror ``pad`` pixels on each side, edge pixel included (NumPy's 'symmetric')."""
    x = torch.cat([x[..., :pad].flip(-1), x, x[..., -pad:].flip(-1)], dim=-1)
    return torch.cat([x[..., :pad, :].flip(-2), x, x[..., -pad:, :].flip(-2)], dim=-2)


def tikhonov_lowpass(x: torch.Tensor, lam: float, pad: int = 16) -> torch.Tensor:
    """argmin_l ½‖l − x‖² + λ/2 (‖∂_h l‖² + ‖∂_v l‖²), by FFT on a symmetric-padded image
    (sporco.signal.tikhonov_filter, the split used in Wohlberg 2016 §VI)."""
    xp = symmetric_pad(x, pad)
    grid = (int(xp.shape[-2]), int(xp.shape[-1]))
    diff = torch.tensor([-1.0, 1.0], dtype=x.dtype, device=x.device)
    energy = torch.fft.rfft2(diff.reshape(2, 1), s=grid).abs().pow(2) + torch.fft.rfft2(
        diff.reshape(1, 2), s=grid
    ).abs().pow(2)
    low = torch.fft.irfft2(torch.fft.rfft2(xp) / (1.0 + lam * energy), s=grid)
    return low[..., pad:-pad, pad:-pad]


@register_model("csc", config=CSCConfig)
class CSCModel(SparselandModule):
    provides = (contracts.Denoiser,)

    @staticmethod
    def check_compatible(spec: Any) -> None:
        from sparseland import registry

        pursuit = spec["pursuit"]
        if pursuit is None:
            raise ConfigError("pursuit", "model=csc needs a pursuit", "e.g. pursuit=csc_admm")
        cls = registry.get("pursuit", pursuit.name).cls
        assert issubclass(cls, Pursuit)
        if cls.needs_matrix:
            raise ConfigError(
                "pursuit",
                f"'{pursuit.name}' needs an explicit matrix of atoms, and model=csc "
                "uses a convolutional dictionary (an operator with no matrix form)",
                "use pursuit=csc_admm, fista or ista",
            )
        if not isinstance(spec.problem, Lasso):
            raise ConfigError(
                "pursuit",
                f"model=csc codes by the convolutional Lasso and '{pursuit.name}' solves a "
                f"{type(spec.problem).__name__} problem",
                "use pursuit=csc_admm, fista or ista",
            )
        provides = {"circular"} if spec["model"].boundary == "circular" else set()
        missing = sorted(cls.operator_needs - provides)
        if missing:
            raise ConfigError(
                "model.boundary",
                f"'{pursuit.name}' needs a {', '.join(missing)} convolution and "
                f"model.boundary={spec['model'].boundary} is not",
                "set model.boundary=circular or use pursuit=fista",
            )

    def __init__(self, config: CSCConfig, context: ModelContext) -> None:
        super().__init__(config, context)
        self.automatic_optimization = False
        assert context.pursuit is not None
        self.pursuit = context.pursuit
        w = torch.randn(
            config.n_filters, self._channels(context), config.filter_size, config.filter_size
        )  # seeded by the run's seed
        w = w - w.mean(dim=(1, 2, 3), keepdim=True)  # zero-mean: they code high-pass content
        self.filters = torch.nn.Parameter(
            normalize_filters(w / w.flatten(1).norm(dim=1)[:, None, None, None]),
            requires_grad=False,
        )
        self._start = time.perf_counter()

    @staticmethod
    def _channels(context: ModelContext) -> int:
        shape = tuple(context.datamodule.signal_shape)
        return int(shape[0]) if len(shape) == 3 else 1

    def configure_optimizers(self) -> Any:
        return None

    # -- the dictionary
    @property
    def operator(self) -> ConvDictionary:
        return ConvDictionary(self.filters.detach(), self.config.boundary)

    def split(
        self, images: torch.Tensor, weight: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        weight = self.config.highpass if weight is None else weight
        if weight <= 0 or min(images.shape[-2:]) < 3:
            return torch.zeros_like(images), images
        low = tikhonov_lowpass(images, weight, pad=min(16, min(images.shape[-2:]) - 1))
        return low, images - low

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.pursuit(self.split(as_images(x))[1], self.operator)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.operator.forward(codes)

    def objective(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return self.pursuit.problem.objective(self.split(as_images(x))[1], self.operator, codes)

    def atoms(self) -> torch.Tensor | None:
        w = self.filters.detach()
        return w[:, 0] if w.shape[1] == 1 else None

    # -- learning the filters
    @torch.no_grad()
    def update_filters(self, high: torch.Tensor, codes: torch.Tensor) -> None:
        grid = codes.shape[-2:]
        z_hat = torch.fft.rfft2(codes)
        lipschitz = float(z_hat.abs().pow(2).sum(dim=(0, 1)).max()) * (1 + 1e-6)
        if lipschitz == 0.0:
            return
        d = self.filters.data.clone()
        y, previous, t = d, d, 1.0
        for _ in range(self.config.filter_steps):
            with torch.enable_grad():
                y = y.detach().requires_grad_(True)
                residual = ConvDictionary(y, self.config.boundary, "fft").forward(codes) - high
                loss = 0.5 * residual.pow(2).sum()
                (grad,) = torch.autograd.grad(loss, y)
            d = normalize_filters(y.detach() - grad / lipschitz)
            t, beta = next_momentum(t)
            y = d + beta * (d - previous)
            previous = d
        del grid
        self.filters.data.copy_(d)

    def learn_step(self, images: torch.Tensor, pursuit: Pursuit | None = None) -> float:
        """One pursuit and one filter update on ``images``; the pursuit's objective."""
        pursuit = self.pursuit if pursuit is None else pursuit
        high = self.split(images)[1]
        codes = pursuit(high, self.operator)
        self.update_filters(high, codes)
        return float(pursuit.problem.objective(high, self.operator, codes).mean())

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        images = as_images(batch.get("clean", batch["x"]))
        objective = self.learn_step(images)
        if not math.isfinite(objective):
            raise NonFiniteError(f"train/objective is {objective}: check the data for NaNs")
        metrics = {"train/objective": objective}
        if self.pursuit.info is not None:
            metrics.update(self.pursuit.info.as_metrics())
        self.log_dict(metrics)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        x = as_images(batch["x"])
        codes = self.encode(x)
        self.log_dict(
            {
                "val/objective": float(self.objective(x, codes).mean()),
                "val/sparsity": float((codes == 0).double().mean()),
                "val/time_s": time.perf_counter() - self._start,
            }
        )

    # -- the denoise task's hook
    @torch.no_grad()
    def denoise_image(self, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        """Code the high-pass of the noisy image with λ ∝ σ; add back its low-pass."""
        sigma = sigma / 255.0 if sigma > 1.0 else sigma
        lam = self.config.denoise_lam or self.config.denoise_scale * sigma
        training = self.pursuit.problem
        assert isinstance(training, Lasso)  # checked by check_compatible
        pursuit = self.pursuit.with_problem(Lasso(lam, training.positive))  # the same solver
        pad = self.config.filter_size
        image = F.pad(noisy[None, None].to(self.filters), (pad, pad, pad, pad), mode="reflect")
        low, high = self.split(image, self.config.denoise_highpass or None)
        for _ in range(self.config.denoise_adapt):  # adapt the filters to this image
            self.learn_step(image, pursuit)
        codes = pursuit(high, self.operator)
        estimate = low + self.operator.forward(codes)
        return estimate[0, 0, pad:-pad, pad:-pad]
