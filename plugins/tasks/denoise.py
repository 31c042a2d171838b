"""Task ``denoise``: denoise a whole noisy image and score it against the clean one.

Contract (sparseland.interfaces.contracts), for any model (patch dictionaries, CNNs,
autoencoders, CSC): the model is a ``Denoiser``, ``denoise_image(noisy: Tensor (H, W), sigma:
float) -> Tensor (H, W)`` where ``noisy`` is a grey image in [0, 1] units (not clipped),
``sigma`` the noise standard deviation in the same units (σ/255), and the result the estimate
of the clean image. The dataset provides a ``NoisyImage``: ``noisy_image``, ``clean_image``
(H, W) and ``sigma`` (dataset ``images``). Logged: ``test/psnr`` and ``test/ssim`` of the
estimate (clipped to [0, 1]) on the whole image, ``test/psnr_noisy`` of the input and the gain
``test/psnr_gain``; artifacts ``denoised.png`` and ``noisy.png``. A model that chooses a
parameter from the noisy image (``ReportsDenoising``) leaves it in ``denoise_report`` (name →
value), logged as the tags ``denoise.<name>``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sparseland import PluginConfig, metrics, option, register_task
from sparseland.errors import ConfigError, ShapeError
from sparseland.interfaces import SparselandDataModule, SparselandModule, Task
from sparseland.interfaces.contracts import (
    Denoiser,
    NoisyImage,
    ReportsDenoising,
    WithDictionary,
)
from sparseland.metrics import MetricSpec


@dataclass
class DenoiseConfig(PluginConfig):
    log_images: bool = option(True, "log the clean, noisy and denoised images as artifacts")


# the task contract (declared metrics, needed capabilities, run), alike in every task
@register_task("denoise", config=DenoiseConfig)
class Denoise(Task):
    declares = (
        MetricSpec("test/psnr", "pixels", "higher", "dB"),
        MetricSpec("test/ssim", "pixels", "higher"),
        MetricSpec("test/psnr_noisy", "pixels", "neither", "dB"),
        MetricSpec("test/psnr_gain", "pixels", "higher", "dB"),
        MetricSpec("test/denoise_time_s", "time", "lower", "s"),
        MetricSpec("test/coherence", "dictionary", "lower"),
    )
    needs_model = (Denoiser,)
    needs_data = (NoisyImage,)

    def run(
        self, model: SparselandModule, datamodule: SparselandDataModule, tracker: Any
    ) -> dict[str, float]:
        if not isinstance(datamodule, NoisyImage):
            raise ConfigError(
                "dataset",
                f"task=denoise needs a NoisyImage (a noisy and a clean image) and "
                f"'{datamodule.config.name}' has none",
                "use dataset=images",
            )
        if not isinstance(model, Denoiser):
            raise ConfigError(
                "model",
                f"task=denoise needs a Denoiser and {type(model).__name__} has no "
                "denoise_image(noisy, sigma)",
                "see plugins/tasks/denoise.py for the contract",
            )
        noisy, clean = datamodule.noisy_image, datamodule.clean_image
        start = time.perf_counter()
        estimate = model.denoise_image(noisy, float(datamodule.sigma)).detach().float().cpu()
        elapsed = time.perf_counter() - start
        if estimate.shape != clean.shape:
            raise ShapeError(
                f"denoise_image returned shape {tuple(estimate.shape)} for an "
                f"image of shape {tuple(clean.shape)}"
            )
        estimate = estimate.clamp(0.0, 1.0)
        psnr = metrics.psnr(clean, estimate, data_range=1.0)
        psnr_noisy = metrics.psnr(clean, noisy.clamp(0.0, 1.0), data_range=1.0)
        out = {
            "test/psnr": psnr,
            "test/ssim": metrics.ssim(estimate.numpy(), clean.numpy(), data_range=1.0),
            "test/psnr_noisy": psnr_noisy,
            "test/psnr_gain": psnr - psnr_noisy,
            "test/denoise_time_s": elapsed,
        }
        if isinstance(model, WithDictionary):
            out["test/coherence"] = metrics.mutual_coherence(model.D)
        if isinstance(model, ReportsDenoising) and model.denoise_report:
            tags = {f"denoise.{k}": f"{v:g}" for k, v in model.denoise_report.items()}
            tracker.set_tags(tags)
        if self.config.log_images:
            tracker.log_image(estimate.numpy(), "denoised.png")
            tracker.log_image(noisy.clamp(0.0, 1.0).numpy(), "noisy.png")
        return out
