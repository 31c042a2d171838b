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
Boundaries: the image is padded by reflection (one filter size, plus s − 1 after with a
stride s) and cropped back.

``stride`` s > 1 places the filters on a grid of step s (z_k lives on the s-times coarser
grid; Aᵀ is a strided correlation, B and C transposed strided convolutions), as CSCNet does
(s = 8 with 11×11 filters): the strided dictionary is far less coherent than the
convolutional one (Simon and Elad's argument for the stride), and each unfolding costs s²
times less. The estimate then depends on where the grid falls, so at test time
(``shift_ensemble``) it is averaged over the s² shifts of the grid, as they do, which also
makes the model shift-invariant again; training uses one shift, and the random crops move the
grid over the images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sparseland import option, register_model
from sparseland.errors import ConfigError, ShapeError, check
from sparseland.interfaces import ModelContext, contracts
from sparseland.plugins.convolutional.conv_dictionary import ConvDictionary

# the denoising-network toolkit that cnn, dae and cscnet share (neural/blocks.py)
from sparseland.plugins.neural.blocks import (
    LOSSES,
    NeuralConfig,
    NeuralModule,
    as_images,
    check_denoiser_data,
    denoising_pair,
    input_is_corrupted,
    psnr_db,
    reconstruction_loss,
)
from sparseland.problems import soft_threshold


@dataclass
class CscNetConfig(NeuralConfig):
    n_filters: int = option(175, "number of convolutional filters")
    filter_size: int = option(11, "side of the square filters, in pixels")
    unfoldings: int = option(12, "ISTA steps after the first thresholding")
    stride: int = option(8, "grid step of the maps (1: the plain convolutional model)")
    shift_ensemble: bool = option(
        True, "stride > 1: average the test estimate over the s² grid shifts"
    )
    tied: bool = option(False, "one dictionary for A, B and C (plain ISTA with learned filters)")
    threshold: float = option(0.1, "initial θ as a multiple of σ (on the data's scale)")
    sigma: float = option(25.0, "Gaussian noise σ (0–255 scale) added when the data come clean")
    loss: str = option("l2", "training loss: l2, l1 or mixed")
    self_ensemble: bool = option(
        False, "denoise_image: average over the 8 symmetries of the square"
    )
    seed: int = option(0, "seed of the filter initialisation")
    lr: float = option(2e-3, "Adam learning rate")
    lr_schedule: str = option("cosine", "constant, or cosine: anneal lr to 0 over lr_steps")

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.n_filters >= 1, "n_filters", f"must be >= 1, got {self.n_filters}")
        check(
            self.filter_size >= 1 and self.filter_size % 2 == 1,
            "filter_size",
            f"must be odd and >= 1, got {self.filter_size}",
        )
        check(
            1 <= self.stride <= self.filter_size,
            "stride",
            f"must be between 1 and filter_size ({self.filter_size}), got {self.stride}",
            "a grid coarser than the filters leaves pixels that no filter covers",
        )
        check(self.unfoldings >= 0, "unfoldings", f"must be >= 0, got {self.unfoldings}")
        check(self.threshold >= 0, "threshold", f"must be >= 0, got {self.threshold}")
        check(self.sigma >= 0, "sigma", f"must be >= 0, got {self.sigma}")
        check(
            self.loss in LOSSES, "loss", f"'{self.loss}' is not a loss", f"choose one of {LOSSES}"
        )


def strided_lipschitz(filters: torch.Tensor, stride: int, iterations: int = 100) -> float:
    """An upper estimate of ‖D‖² for the synthesis Σ_k d_k * (z_k upsampled by ``stride``):
    the exact circular bound of :class:`ConvDictionary` for stride 1; for stride > 1, power
    iteration on DᵀD on a 16s × 16s image with 5 % margin (‖D_s‖ ≤ ‖D‖, but by far)."""
    if stride == 1:
        return ConvDictionary(filters).lipschitz()
    pad, side = filters.shape[-1] // 2, 16 * stride
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(1, filters.shape[0], side, side, generator=gen, dtype=torch.float64)
    w = filters.double()
    norm = 0.0
    for _ in range(iterations):
        x = F.conv_transpose2d(z, w, stride=stride, padding=pad)
        z = F.conv2d(x, w, stride=stride, padding=pad)
        norm = float(z.norm())
        z = z / norm
    return 1.05 * norm


def ista_filters(n_filters: int, size: int, seed: int, stride: int = 1) -> torch.Tensor:
    """Random zero-mean unit-norm filters (K, 1, s, s), scaled by 1/√L with L = ‖D‖²."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(n_filters, 1, size, size, generator=gen)
    w = w - w.mean(dim=(2, 3), keepdim=True)
    w = w / w.flatten(1).norm(dim=1)[:, None, None, None]
    return w / math.sqrt(strided_lipschitz(w, stride))


@register_model("cscnet", config=CscNetConfig)
# the NeuralModule skeleton (capability, compatibility check, init), as in dae, psd, lista
class CscNet(NeuralModule):
    provides = (contracts.Denoiser,)

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
        d = ista_filters(config.n_filters, config.filter_size, config.seed, config.stride)
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
        c = self.config
        return F.conv2d(images, self.analysis, stride=c.stride, padding=c.filter_size // 2)

    def _synthesise(
        self, codes: torch.Tensor, filters: torch.Tensor, size: tuple[int, int]
    ) -> torch.Tensor:
        """Σ_k f_k * z_k on an image of ``size``: the adjoint of :meth:`_correlate` there."""
        c = self.config
        extra = ((size[0] - 1) % c.stride, (size[1] - 1) % c.stride)
        return F.conv_transpose2d(
            codes, filters, stride=c.stride, padding=c.filter_size // 2, output_padding=extra
        )

    def maps(self, centred: torch.Tensor) -> torch.Tensor:
        """The sparse maps z^T (n, K, H/s, W/s) of zero-mean images (n, 1, H, W)."""
        size = (centred.shape[-2], centred.shape[-1])
        z = soft_threshold(self._correlate(centred), self.theta)
        for _ in range(self.config.unfoldings):
            residual = self._synthesise(z, self.synthesis, size) - centred
            z = soft_threshold(z - self._correlate(residual), self.theta)
        return z

    def restore_with_maps(
        self, noisy: torch.Tensor, shifts: list[tuple[int, int]] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x̂ = Σ_k c_k * z_k + m on the reflection-padded image, cropped back, and the maps.

        ``shifts``: grid offsets (dy, dx) in [0, s)²; the image is padded by f + dy before and
        f + s − 1 − dy after (the same size for every shift, so they run as one batch), and the
        estimates come back stacked along the batch axis, shift by shift. Default: (0, 0)."""
        f, s = self.config.filter_size, self.config.stride
        h, w = noisy.shape[-2:]
        if min(h, w) <= f + s - 1:
            raise ShapeError(
                f"model=cscnet pads images by reflection by {f + s - 1} pixels (filter_size "
                f"{f}, stride {s}) and needs them larger than that, got {h}×{w}: use a larger "
                "dataset.patch_size, or a smaller model.filter_size or model.stride"
            )
        shifts = shifts or [(0, 0)]
        padded = torch.cat(
            [
                F.pad(noisy, (f + dx, f + s - 1 - dx, f + dy, f + s - 1 - dy), mode="reflect")
                for dy, dx in shifts
            ]
        )
        mean = noisy.mean(dim=(2, 3), keepdim=True).repeat(len(shifts), 1, 1, 1)
        z = self.maps(padded - mean)
        size = (padded.shape[-2], padded.shape[-1])
        estimate = (self._synthesise(z, self.output, size) + mean).split(noisy.shape[0])
        crops = [
            e[..., f + dy : f + dy + h, f + dx : f + dx + w]
            for e, (dy, dx) in zip(estimate, shifts)
        ]
        return torch.cat(crops), z

    def restore(self, noisy: torch.Tensor) -> torch.Tensor:
        """The estimate; at test time with stride s > 1 and ``shift_ensemble``, the mean of
        the estimates over all s² grid shifts (in chunks of 16 shifts)."""
        s = self.config.stride
        if self.training or s == 1 or not self.config.shift_ensemble:
            return self.restore_with_maps(noisy)[0]
        shifts = [(dy, dx) for dy in range(s) for dx in range(s)]
        total = torch.zeros_like(noisy)
        for start in range(0, len(shifts), 16):
            chunk = shifts[start : start + 16]
            total += self.restore_with_maps(noisy, chunk)[0].unflatten(0, (len(chunk), -1)).sum(0)
        return total / len(shifts)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        images = as_images(x)
        return self.maps(images - images.mean(dim=(2, 3), keepdim=True))

    def denoise_image(self, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        """Denoise one grey image (H, W) in [0, 1]; trained at the noise level of its data
        (``model.sigma``), ``sigma`` is not an input."""
        return self.denoise_in_eval_mode(noisy, self.config.self_ensemble)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        noisy, clean = denoising_pair(batch, self.config.sigma / 255.0, input_is_corrupted(self))
        restored, z = self.restore_with_maps(noisy)
        loss = reconstruction_loss(restored, clean, self.config.loss)
        sparsity = (z.detach() == 0).float().mean()  # fraction of zeros in the maps
        return loss, {"psnr": psnr_db(restored.detach(), clean), "sparsity": sparsity}

    def atoms(self) -> torch.Tensor | None:
        """The synthesis filters c_k as images (K, s, s)."""
        return self.output.detach()[:, 0]
