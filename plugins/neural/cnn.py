"""Model ``cnn``: a convolutional classifier, or a residual denoiser (DnCNN).

Classifier (LeCun et al. 1998; batch norm: Ioffe and Szegedy 2015; dropout: Srivastava et al.
2014): blocks of conv → [batch norm] → ReLU → [pooling], then [dropout] → linear, trained on
the cross-entropy of the labels.

Denoiser (Zhang et al. 2017, "Beyond a Gaussian denoiser", eq. 1): the network R predicts the
noise of y = x + v, the estimate is x̂ = y − R(y), and the loss is ‖R(y) − (y − x)‖²
averaged over pixels (= ‖x̂ − x‖²). Layers: conv + ReLU, (depth − 2) × (conv + BN + ReLU), conv.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sparseland import option, register_model
from sparseland.errors import ConfigError, check
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

MODES = ("classifier", "denoiser")
POOLINGS = ("max", "avg", "none")


@dataclass
class CnnConfig(NeuralConfig):
    mode: str = option(
        "classifier",
        "classifier (conv blocks, pooling, linear head) or denoiser (DnCNN residual net)",
    )
    channels: list[int] = option(
        [32, 64], "classifier: output channels of each conv block, one block per entry"
    )
    kernel_size: int = option(3, "side of the square convolution kernels")
    batch_norm: bool = option(True, "batch normalisation after each convolution")
    pooling: str = option("max", "classifier: max, avg or none after each block")
    dropout: float = option(0.0, "classifier: dropout probability before the linear head")
    # denoiser (DnCNN): conv layers and their width; noise added to clean data (0–255 scale)
    depth: int = option(17, "denoiser (DnCNN): number of conv layers")
    width: int = option(64, "denoiser (DnCNN): channels of the hidden conv layers")
    sigma: float = option(25.0, "Gaussian noise σ (0–255 scale) added when the data come clean")
    loss: str = option("l2", "training loss: l2, l1 or mixed")
    self_ensemble: bool = option(
        False, "denoise_image: average over the 8 symmetries of the square"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.mode in MODES, "mode", f"'{self.mode}' is not a mode", f"choose one of {MODES}")
        check(
            all(c >= 1 for c in self.channels) and bool(self.channels),
            "channels",
            f"must be a non-empty list of positive counts, got {self.channels}",
        )
        check(self.kernel_size % 2 == 1, "kernel_size", f"must be odd, got {self.kernel_size}")
        check(
            self.pooling in POOLINGS,
            "pooling",
            f"'{self.pooling}' is not a pooling",
            f"choose one of {POOLINGS}",
        )
        check(0 <= self.dropout < 1, "dropout", f"must be in [0, 1), got {self.dropout}")
        check(self.depth >= 2, "depth", f"must be >= 2, got {self.depth}")
        check(self.width >= 1, "width", f"must be >= 1, got {self.width}")
        check(self.sigma >= 0, "sigma", f"must be >= 0, got {self.sigma}")
        check(
            self.loss in LOSSES, "loss", f"'{self.loss}' is not a loss", f"choose one of {LOSSES}"
        )


def classifier_features(config: CnnConfig, in_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    k = config.kernel_size
    for out in config.channels:
        layers.append(nn.Conv2d(in_channels, out, k, padding=k // 2))
        if config.batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.ReLU())
        if config.pooling != "none":
            pool = nn.MaxPool2d if config.pooling == "max" else nn.AvgPool2d
            layers.append(pool(2, ceil_mode=True))
        in_channels = out
    return nn.Sequential(*layers)


def dncnn(config: CnnConfig, channels: int) -> nn.Sequential:
    k, w = config.kernel_size, config.width
    layers: list[nn.Module] = [nn.Conv2d(channels, w, k, padding=k // 2), nn.ReLU()]
    for _ in range(config.depth - 2):
        layers.append(nn.Conv2d(w, w, k, padding=k // 2, bias=not config.batch_norm))
        if config.batch_norm:
            layers.append(nn.BatchNorm2d(w))
        layers.append(nn.ReLU())
    layers.append(nn.Conv2d(w, channels, k, padding=k // 2))
    return nn.Sequential(*layers)


@register_model("cnn", config=CnnConfig)
class Cnn(NeuralModule):
    @classmethod
    def capabilities(cls, config: Any = None) -> frozenset[type]:
        if config is None:
            return frozenset({contracts.Denoiser, contracts.Classifier})
        denoiser = config.mode == "denoiser"
        return frozenset({contracts.Denoiser if denoiser else contracts.Classifier})

    @staticmethod
    def check_compatible(spec: Any) -> None:
        from sparseland import registry

        if spec["model"].mode == "denoiser":
            check_denoiser_data("cnn", spec)
        elif spec["dataset"] is not None:
            needs = (contracts.Labelled,)
            contracts.require(
                needs,
                spec.capabilities("dataset"),
                "model=cnn in classifier mode",
                f"dataset '{spec['dataset'].name}'",
                "model.mode",
                [n for n in registry.names("dataset") if spec.provides("dataset", n, needs)]
                + ["model.mode=denoiser"],
            )

    def __init__(self, config: CnnConfig, context: ModelContext) -> None:
        super().__init__(config, context)
        dm = context.datamodule
        probe = as_images(torch.zeros(2, *dm.signal_shape))
        channels = probe.shape[1]
        if config.mode == "classifier":
            if dm.n_classes < 2:
                raise ConfigError(
                    "dataset",
                    "a classifier needs at least 2 classes",
                    "use a labelled dataset (digits, mnist)",
                )
            self.features = classifier_features(config, channels)
            with torch.no_grad():
                n_features = self.features.eval()(probe).flatten(1).shape[1]
            self.features.train()
            self.head = nn.Sequential(
                nn.Flatten(), nn.Dropout(config.dropout), nn.Linear(n_features, dm.n_classes)
            )
            self.first_conv: nn.Module = self.features[0]
        else:
            self.noise_net = dncnn(config, channels)
            self.first_conv = self.noise_net[0]

    # -- classifier
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(as_images(x)))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x).argmax(dim=1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Classifier: the features fed to the linear head. Denoiser: the noise estimate."""
        if self.config.mode == "classifier":
            return self.features(as_images(x)).flatten(1)
        return self.noise_net(as_images(x))

    # -- denoiser
    def restore(self, noisy: torch.Tensor) -> torch.Tensor:
        """x̂ = y − R(y) (residual learning)."""
        return noisy - self.noise_net(noisy)

    def denoise_image(self, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        """Denoise one grey image (H, W) in [0, 1]. The DnCNN is blind: it was trained at the
        noise level of its data (``model.sigma``), ``sigma`` is not an input."""
        if self.config.mode != "denoiser":
            raise ConfigError("model.mode", "this CNN is a classifier", "train model.mode=denoiser")
        return self.denoise_in_eval_mode(noisy, self.config.self_ensemble)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        if self.config.mode == "classifier":
            logits = self.logits(batch["x"])
            y = batch["y"].long()
            accuracy = (logits.argmax(dim=1) == y).float().mean()
            return F.cross_entropy(logits, y), {"accuracy": accuracy}
        noisy, clean = denoising_pair(batch, self.config.sigma / 255.0, input_is_corrupted(self))
        restored = self.restore(noisy)
        loss = reconstruction_loss(restored, clean, self.config.loss)
        return loss, {"psnr": psnr_db(restored.detach(), clean)}

    def atoms(self) -> torch.Tensor | None:
        assert isinstance(self.first_conv, nn.Conv2d)
        return first_layer_filters(self.first_conv)
