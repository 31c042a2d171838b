"""Model ``dae``: a convolutional denoising autoencoder (Vincent et al. 2008; convolutional
form as in Forsyth's notes on learned image representations).

Encoder: per level a strided convolution (stride 2) and a ReLU; decoder: per level an
upsampling (×2, back to the size of the level above) and a convolution + ReLU, then a last
convolution to the image channels. Trained on (corrupted, clean) pairs: the corruption keeps
the network from learning the identity, which would reconstruct but not denoise. Loss: L2,
L1 or (1 − w)·L2 + w·L1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sparseland import option, register_model
from sparseland.errors import check
from sparseland.interfaces import ModelContext, contracts

# the denoising-network toolkit that cnn, dae and cscnet share (neural/blocks.py)
from sparseland.plugins.neural.blocks import (
    LOSSES,
    NeuralConfig,
    NeuralModule,
    as_images,
    check_denoiser_data,
    denoising_pair,
    first_layer_filters,
    input_is_corrupted,
    psnr_db,
    reconstruction_loss,
)

UPSAMPLINGS = ("nearest", "bilinear")


@dataclass
class DaeConfig(NeuralConfig):
    channels: list[int] = option([32, 64], "channels of each encoder level, one level per entry")
    kernel_size: int = option(3, "side of the square convolution kernels")
    upsampling: str = option("bilinear", "decoder upsampling: bilinear or nearest")
    loss: str = option("l2", "training loss: l2, l1 or mixed")
    l1_weight: float = option(0.5, "weight of L1 in the mixed loss")
    sigma: float = option(25.0, "Gaussian noise σ (0–255 scale) added when the data come clean")
    self_ensemble: bool = option(
        False, "denoise_image: average over the 8 symmetries of the square"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check(
            bool(self.channels) and all(c >= 1 for c in self.channels),
            "channels",
            f"must be a non-empty list of positive counts, got {self.channels}",
        )
        check(self.kernel_size % 2 == 1, "kernel_size", f"must be odd, got {self.kernel_size}")
        check(
            self.upsampling in UPSAMPLINGS,
            "upsampling",
            f"'{self.upsampling}' is not one",
            f"choose one of {UPSAMPLINGS}",
        )
        check(
            self.loss in LOSSES, "loss", f"'{self.loss}' is not a loss", f"choose one of {LOSSES}"
        )
        check(0 <= self.l1_weight <= 1, "l1_weight", f"must be in [0, 1], got {self.l1_weight}")
        check(self.sigma >= 0, "sigma", f"must be >= 0, got {self.sigma}")


@register_model("dae", config=DaeConfig)
# the NeuralModule skeleton (capability, compatibility check, init), as in dae, psd, lista
class DenoisingAutoencoder(NeuralModule):
    provides = (contracts.Denoiser,)

    @staticmethod
    def check_compatible(spec: Any) -> None:
        check_denoiser_data("dae", spec)

    def __init__(self, config: DaeConfig, context: ModelContext) -> None:
        super().__init__(config, context)
        signal_shape = tuple(context.datamodule.signal_shape)
        self._rows = len(signal_shape) == 1
        channels = as_images(torch.zeros(1, *signal_shape)).shape[1]
        k, widths = config.kernel_size, list(config.channels)
        ins = [channels, *widths[:-1]]
        self.down = nn.ModuleList(
            nn.Conv2d(i, o, k, stride=2, padding=k // 2) for i, o in zip(ins, widths)
        )
        outs = [*ins[1:], widths[0]][::-1]  # decoder widths mirror the encoder
        self.up = nn.ModuleList(
            nn.Conv2d(i, o, k, padding=k // 2) for i, o in zip(widths[::-1], outs)
        )
        self.out = nn.Conv2d(widths[0], channels, k, padding=k // 2)
        self._sizes: list[tuple[int, int]] = []

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h = as_images(x)
        self._sizes = []
        for conv in self.down:
            self._sizes.append((h.shape[-2], h.shape[-1]))
            h = F.relu(conv(h))
        return h

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes back to images; sizes are those of the last :meth:`encode` (or doubled)."""
        h = codes
        sizes = self._sizes[::-1] if len(self._sizes) == len(self.up) else [None] * len(self.up)
        for conv, size in zip(self.up, sizes):
            if size is None:
                size = (2 * h.shape[-2], 2 * h.shape[-1])
            align = False if self.config.upsampling == "bilinear" else None
            h = F.relu(
                conv(F.interpolate(h, size=size, mode=self.config.upsampling, align_corners=align))
            )
        out = self.out(h)
        return out.flatten(1) if self._rows else out

    def restore(self, noisy: torch.Tensor) -> torch.Tensor:
        return as_images(self.decode(self.encode(noisy)))

    def denoise_image(self, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        """Denoise one grey image (H, W) in [0, 1] (trained at the noise of its data)."""
        rows, self._rows = self._rows, False  # images out, whatever the training data
        try:
            return self.denoise_in_eval_mode(noisy, self.config.self_ensemble)
        finally:
            self._rows = rows

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        noisy, clean = denoising_pair(batch, self.config.sigma / 255.0, input_is_corrupted(self))
        restored = self.restore(noisy)
        loss = reconstruction_loss(restored, clean, self.config.loss, self.config.l1_weight)
        return loss, {"psnr": psnr_db(restored.detach(), clean)}

    def atoms(self) -> torch.Tensor | None:
        first = self.down[0]
        assert isinstance(first, nn.Conv2d)
        return first_layer_filters(first)
