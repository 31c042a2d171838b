"""Non-learned references that sit in the same tables as the learned models.

``tv`` and ``wavelet`` denoise with scikit-image (Chambolle 2004; BayesShrink wavelet
thresholding, Chang, Yu and Vetterli 2000); ``pca`` encodes signals by their top principal
components (fitted on the training split), the classic linear-feature baseline. None of them
trains: fitting happens in ``on_fit_start`` and the training loop has nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from sparseland import PluginConfig, option, register_model
from sparseland.errors import check
from sparseland.interfaces import ModelContext, SparselandModule, contracts


class UntrainedModel(SparselandModule):
    def __init__(self, config: Any, context: ModelContext) -> None:
        super().__init__(config, context)
        self.automatic_optimization = False

    def configure_optimizers(self) -> None:
        return None

    def training_step(self, batch: Any, batch_idx: int) -> None:
        return None


@dataclass
class TvConfig(PluginConfig):
    weight_per_sigma: float = option(
        0.9, "Chambolle weight = weight_per_sigma · σ (σ in [0, 1] units)"
    )

    def __post_init__(self) -> None:
        check(
            self.weight_per_sigma > 0,
            "weight_per_sigma",
            f"must be > 0, got {self.weight_per_sigma}",
        )


@register_model("tv", config=TvConfig)
class TotalVariation(UntrainedModel):
    provides = (contracts.Denoiser,)

    def denoise_image(self, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        from skimage.restoration import denoise_tv_chambolle

        weight = self.config.weight_per_sigma * sigma
        return torch.from_numpy(denoise_tv_chambolle(noisy.double().cpu().numpy(), weight=weight))


@dataclass
class WaveletConfig(PluginConfig):
    wavelet: str = option("db2", "PyWavelets wavelet name")
    method: str = option("BayesShrink", "threshold selection: BayesShrink or VisuShrink")
    mode: str = option("soft", "soft or hard thresholding of the coefficients")

    def __post_init__(self) -> None:
        check(
            self.method in ("BayesShrink", "VisuShrink"),
            "method",
            f"'{self.method}' unknown",
            "choose BayesShrink or VisuShrink",
        )
        check(
            self.mode in ("soft", "hard"), "mode", f"'{self.mode}' unknown", "choose soft or hard"
        )


@register_model("wavelet", config=WaveletConfig)
class WaveletShrinkage(UntrainedModel):
    provides = (contracts.Denoiser,)

    def denoise_image(self, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        from skimage.restoration import denoise_wavelet

        c = self.config
        out = denoise_wavelet(
            noisy.double().cpu().numpy(),
            sigma=sigma,
            wavelet=c.wavelet,
            mode=c.mode,
            method=c.method,
            rescale_sigma=True,
        )
        return torch.from_numpy(out)


@dataclass
class PcaConfig(PluginConfig):
    n_components: int = option(32, "principal components kept")

    def __post_init__(self) -> None:
        check(self.n_components >= 1, "n_components", f"must be >= 1, got {self.n_components}")


@register_model("pca", config=PcaConfig)
class Pca(UntrainedModel):
    def __init__(self, config: PcaConfig, context: ModelContext) -> None:
        super().__init__(config, context)
        self.register_buffer("mean", torch.zeros(0))
        self.register_buffer("components", torch.zeros(0))

    def on_fit_start(self) -> None:
        x = torch.cat(
            [
                b["x"].reshape(b["x"].shape[0], -1)
                for b in self.context.datamodule.train_dataloader()
            ]
        ).double()
        self.mean = x.mean(dim=0)
        # principal directions: right singular vectors of the centred data, largest first
        _, _, vh = torch.linalg.svd(x - self.mean, full_matrices=False)
        self.components = vh[: self.config.n_components].T.contiguous()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1).double()
        return ((flat - self.mean) @ self.components).float()

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return (codes.double() @ self.components.T + self.mean).float()


@dataclass
class PixelsConfig(PluginConfig):
    pass


@register_model("pixels", config=PixelsConfig)
class Pixels(UntrainedModel):
    """The raw signal as its own code: the baseline row of a feature table."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return codes
