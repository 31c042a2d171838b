"""Model ``cscnet``: supervised convolutional sparse coding for denoising, the filters learned
end to end through an unrolled convolutional ISTA (Simon and Elad 2019, "Rethinking the CSC
model for natural images", CSCNet; the convolutional form of LISTA, Gregor and LeCun 2010).

The model is CSC: the estimate is x̂ = Σ_k c_k * z_k + m with sparse maps z_k, m the image's
mean. The maps come from T unfoldings of ISTA for ½‖y − m − Σ_k b_k * z_k‖² + ‖θ ⊙ z‖₁:
    z⁰ = S_θ(Aᵀ(y − m)),   z^{t+1} = S_θ(z^t − Aᵀ(Σ_k b_k * z_k^t − (y − m))),
with Aᵀ the correlation with the analysis filters a_k. ISTA has A = B = C = D/√L (step 1/L);
CSCNet unties them (``tied=false``) and learns A, B, C and the per-filter thresholds θ by
back-propagation on (noisy, clean) pairs, minimising ‖x̂ − x‖² (the task-driven dictionary of
Mairal, Bach and Ponce 2012). Filters start as random zero-mean unit-norm filters scaled by
1/√L, L = ‖D‖² (so the first forward pass is ISTA), thresholds at ``threshold`` · σ.
Boundaries: the image is padded by reflection (one filter size) and cropped back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from framework import register_model
from framework.errors import ConfigError, check
from framework.interfaces import ModelContext
from plugins.convolutional.conv_dictionary import ConvDictionary
from plugins.neural.blocks import (
    LOSSES,
    NeuralConfig,
    NeuralModule,
    as_images,
    check_denoiser_data,
    denoising_pair,
    input_is_corrupted,
    psnr_db,
    reconstruction_loss,
    soft_threshold,
)


@dataclass
class CscNetConfig(NeuralConfig):
    n_filters: int = 64
    filter_size: int = 7
    unfoldings: int = 8  # ISTA steps after the first thresholding
    tied: bool = False  # one dictionary for A, B and C (plain ISTA with learned filters)
    threshold: float = 0.1  # initial θ as a multiple of σ (on the data's scale)
    sigma: float = 25.0  # Gaussian noise (0–255 scale) added when the data come clean
    loss: str = "l2"
    self_ensemble: bool = False  # denoise_image: average over the 8 symmetries of the square
    seed: int = 0
    lr: float = 2e-3
    lr_schedule: str = "cosine"

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.n_filters >= 1, "n_filters", f"must be >= 1, got {self.n_filters}")
        check(
            self.filter_size >= 1 and self.filter_size % 2 == 1,
            "filter_size",
            f"must be odd and >= 1, got {self.filter_size}",
        )
        check(self.unfoldings >= 0, "unfoldings", f"must be >= 0, got {self.unfoldings}")
        check(self.threshold >= 0, "threshold", f"must be >= 0, got {self.threshold}")
        check(self.sigma >= 0, "sigma", f"must be >= 0, got {self.sigma}")
        check(
            self.loss in LOSSES, "loss", f"'{self.loss}' is not a loss", f"choose one of {LOSSES}"
        )


def ista_filters(n_filters: int, size: int, seed: int) -> torch.Tensor:
    """Random zero-mean unit-norm filters (K, 1, s, s), scaled by 1/√L with L = ‖D‖²."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(n_filters, 1, size, size, generator=gen)
    w = w - w.mean(dim=(2, 3), keepdim=True)
    w = w / w.flatten(1).norm(dim=1)[:, None, None, None]
    return w / math.sqrt(ConvDictionary(w).lipschitz())


@register_model("cscnet", config=CscNetConfig)
class CscNet(NeuralModule):
    @staticmethod
    def check_compatible(spec: Any) -> None:
        check_denoiser_data("cscnet", spec)

    def __init__(self, config: CscNetConfig, context: ModelContext) -> None:
        super().__init__(config, context)
        shape = tuple(context.datamodule.signal_shape)
        if as_images(torch.zeros(1, *shape)).shape[1] != 1:
            raise ConfigError(
                "dataset", f"model=cscnet codes grey images, got signals of shape {shape}"
            )
        d = ista_filters(config.n_filters, config.filter_size, config.seed)
        copies = 1 if config.tied else 3
        self.filters = nn.ParameterList(nn.Parameter(d.clone()) for _ in range(copies))
        theta = config.threshold * config.sigma / 255.0
        self.theta = nn.Parameter(torch.full((1, config.n_filters, 1, 1), theta))

    @property
    def analysis(self) -> torch.Tensor:
        return self.filters[0]

    @property
    def synthesis(self) -> torch.Tensor:
        return self.filters[0] if self.config.tied else self.filters[1]

    @property
    def output(self) -> torch.Tensor:
        return self.filters[0] if self.config.tied else self.filters[2]

    def _correlate(self, images: torch.Tensor) -> torch.Tensor:
        return F.conv2d(images, self.analysis, padding=self.config.filter_size // 2)

    def _synthesise(self, codes: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(codes, filters, padding=self.config.filter_size // 2)

    def maps(self, centred: torch.Tensor) -> torch.Tensor:
        """The sparse maps z^T (n, K, H, W) of zero-mean images (n, 1, H, W)."""
        z = soft_threshold(self._correlate(centred), self.theta)
        for _ in range(self.config.unfoldings):
            residual = self._synthesise(z, self.synthesis) - centred
            z = soft_threshold(z - self._correlate(residual), self.theta)
        return z

    def restore_with_maps(self, noisy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x̂ = Σ_k c_k * z_k + m on the reflection-padded image, cropped back, and the maps."""
        pad = self.config.filter_size
        padded = F.pad(noisy, (pad, pad, pad, pad), mode="reflect")
        mean = padded.mean(dim=(2, 3), keepdim=True)
        z = self.maps(padded - mean)
        estimate = self._synthesise(z, self.output) + mean
        return estimate[..., pad:-pad, pad:-pad], z

    def restore(self, noisy: torch.Tensor) -> torch.Tensor:
        return self.restore_with_maps(noisy)[0]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        images = as_images(x)
        return self.maps(images - images.mean(dim=(2, 3), keepdim=True))

    def denoise_image(self, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        """Denoise one grey image (H, W) in [0, 1]; trained at the noise level of its data
        (``model.sigma``), ``sigma`` is not an input."""
        return self.denoise_in_eval_mode(noisy)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        noisy, clean = denoising_pair(batch, self.config.sigma / 255.0, input_is_corrupted(self))
        restored, z = self.restore_with_maps(noisy)
        loss = reconstruction_loss(restored, clean, self.config.loss)
        sparsity = (z.detach() == 0).float().mean()  # fraction of zeros in the maps
        return loss, {"psnr": psnr_db(restored.detach(), clean), "sparsity": sparsity}

    def atoms(self) -> torch.Tensor | None:
        """The synthesis filters c_k as images (K, s, s)."""
        return self.output.detach()[:, 0]
