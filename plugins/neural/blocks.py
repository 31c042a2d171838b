"""Building blocks shared by the neural models: a base module trained by Adam, image shapes,
denoising pairs and the soft threshold."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sparseland import PluginConfig, option
from sparseland.errors import ConfigError, ShapeError, check
from sparseland.interfaces import SparselandModule, contracts

LR_SCHEDULES = ("constant", "cosine")


@dataclass
class NeuralConfig(PluginConfig):
    """Optimisation settings every back-propagation model shares.

    ``lr_schedule``: ``constant`` keeps Adam's ``lr``; ``cosine`` anneals it from ``lr`` to 0
    along a half cosine over ``lr_steps`` optimiser steps (Loshchilov and Hutter 2017, without
    restarts), which ends training on a settled iterate instead of a noisy one.
    ``lr_steps = 0`` takes the trainer's total (``max_steps``, or ``max_epochs`` × batches per
    epoch); when the model is not attached to a trainer (and ``lr_steps = 0``) there is no
    horizon and the learning rate stays constant.
    """

    lr: float = option(1e-3, "Adam learning rate")
    weight_decay: float = option(0.0, "Adam weight decay (L2 penalty on the weights)")
    lr_schedule: str = option("constant", "constant, or cosine: anneal lr to 0 over lr_steps")
    lr_steps: int = option(0, "length of the cosine decay; 0: the trainer's total number of steps")

    def __post_init__(self) -> None:
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        check(
            self.lr_schedule in LR_SCHEDULES,
            "lr_schedule",
            f"'{self.lr_schedule}' is not a schedule",
            f"choose one of {LR_SCHEDULES}",
        )
        check(self.lr_steps >= 0, "lr_steps", f"must be >= 0, got {self.lr_steps}")


class NeuralModule(SparselandModule):
    """A model trained by back-propagation with Lightning's automatic optimisation.

    Subclasses implement :meth:`loss` (a scalar and metrics to log); training and validation
    steps log them as ``train/*`` and ``val/*`` learning curves.
    """

    @staticmethod
    def check_compatible(spec: Any) -> None:
        """Neural models need neither the run's pursuit nor its learner: both are ignored."""

    def configure_optimizers(self) -> Any:
        """Adam; under ``lr_schedule=cosine`` with a known horizon, also a per-step
        ``CosineAnnealingLR`` to 0 (Lightning's ``lr_scheduler`` dict)."""
        optimizer = torch.optim.Adam(
            self.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
        )
        steps = self.schedule_steps()
        if self.config.lr_schedule == "constant" or steps is None:
            return optimizer
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }

    def schedule_steps(self) -> int | None:
        """The cosine's length: ``lr_steps``, else the attached trainer's total, else None."""
        if self.config.lr_steps > 0:
            return int(self.config.lr_steps)
        if self._trainer is None:
            return None
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise ConfigError(
                "model.lr_steps",
                "lr_schedule=cosine needs the run's length, and the trainer has no step or "
                "epoch limit",
                "set trainer.max_steps or trainer.max_epochs, or model.lr_steps",
            )
        return max(1, int(total))

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        raise NotImplementedError

    def restore(self, noisy: torch.Tensor) -> torch.Tensor:
        """Denoisers: images (n, C, H, W) → their estimates."""
        raise NotImplementedError

    def denoise_in_eval_mode(self, noisy: torch.Tensor, self_ensemble: bool) -> torch.Tensor:
        """:func:`denoise_whole_image` with :meth:`restore` in eval mode (batch norm on its
        running statistics), averaged over the 8 symmetries with ``self_ensemble``; the mode it
        found is restored."""
        was_training = self.training
        self.eval()
        try:
            return denoise_whole_image(
                self.restore, noisy, device=self.device, self_ensemble=self_ensemble
            )
        finally:
            self.train(was_training)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, extra = self.loss(batch)
        # sync_dist: under DDP the logged loss is that of the whole (all-process) batch
        self.log_dict(
            {"train/loss": loss.detach(), **{f"train/{k}": v for k, v in extra.items()}},
            sync_dist=True,
        )
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, extra = self.loss(batch)
        self.log_dict(
            {"val/loss": loss, **{f"val/{k}": v for k, v in extra.items()}},
            prog_bar=True,
            sync_dist=True,
        )


def as_images(x: torch.Tensor) -> torch.Tensor:
    """A batch as images (n, C, H, W); rows (n, d) with d square and (n, H, W) get C = 1."""
    if x.ndim == 4:
        return x
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side == x.shape[1]:
            return x.reshape(x.shape[0], 1, side, side)
    raise ShapeError(
        f"expected images (n, C, H, W) or square flattened patches (n, d), got {tuple(x.shape)}; "
        "use an image dataset (digits, image_crops) or square patches"
    )


def as_rows(x: torch.Tensor) -> torch.Tensor:
    """A batch as rows (n, d): images are flattened."""
    return x.reshape(x.shape[0], -1)


def denoising_pair(
    batch: dict[str, torch.Tensor], sigma: float, corrupted: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy, clean) images from a batch.

    A denoising dataset gives both (``x`` and ``clean``); under a corruption preprocessor
    ``x`` is corrupted and ``raw`` is clean; otherwise the clean ``x`` is corrupted here by
    Gaussian noise of standard deviation ``sigma`` (on the data's scale).
    """
    if "clean" in batch:
        return as_images(batch["x"]), as_images(batch["clean"])
    if corrupted and "raw" in batch:
        return as_images(batch["x"]), as_images(batch["raw"])
    clean = as_images(batch["x"])
    return clean + sigma * torch.randn_like(clean), clean


def reconstruction_loss(
    output: torch.Tensor, target: torch.Tensor, kind: str, l1_weight: float = 0.5
) -> torch.Tensor:
    """Mean L2 (squared error), L1 (absolute error) or their mix (1 − w)·L2 + w·L1."""
    if kind == "l2":
        return (output - target).pow(2).mean()
    if kind == "l1":
        return (output - target).abs().mean()
    if kind == "mixed":
        diff = output - target
        return (1.0 - l1_weight) * diff.pow(2).mean() + l1_weight * diff.abs().mean()
    raise ConfigError("model.loss", f"'{kind}' is not a loss", "choose one of l2, l1, mixed")


LOSSES = ("l2", "l1", "mixed")


def first_layer_filters(conv: nn.Conv2d) -> torch.Tensor:
    """The filters of a first convolution as images (out·in, k, k), for the atoms PNG."""
    w = conv.weight.detach()
    return w.reshape(-1, w.shape[-2], w.shape[-1])


def input_is_corrupted(module: SparselandModule) -> bool:
    """Whether the run's preprocessor corrupts the signals (then ``raw`` holds the clean ones)."""
    pre = module.context.datamodule.preprocessor
    return pre is not None and pre.corrupts


def psnr_db(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of images in [0, 1] (a tensor, for logging inside a step)."""
    mse = (x.clamp(0.0, 1.0) - ref).pow(2).mean().clamp_min(1e-12)
    return -10.0 * torch.log10(mse)


def dihedral(x: torch.Tensor, index: int, inverse: bool = False) -> torch.Tensor:
    """One of the 8 symmetries of the square on the last two axes (``index`` in 0..7: bit 2 a
    transpose, then bits 1 and 0 vertical and horizontal flips), or its inverse."""
    steps: list[Callable[[torch.Tensor], torch.Tensor]] = []
    if index & 4:
        steps.append(lambda t: t.transpose(-2, -1))
    if index & 2:
        steps.append(lambda t: t.flip(-2))
    if index & 1:
        steps.append(lambda t: t.flip(-1))
    for step in reversed(steps) if inverse else steps:
        x = step(x)
    return x


@torch.no_grad()
def denoise_whole_image(
    restore: Callable[[torch.Tensor], torch.Tensor],
    noisy: torch.Tensor,
    multiple: int = 1,
    device: Any = None,
    self_ensemble: bool = False,
) -> torch.Tensor:
    """Apply a fully convolutional ``restore`` (images (1, 1, H, W) → same) to one grey image
    (H, W) and clamp to [0, 1]. The image is padded by reflection to a multiple of
    ``multiple`` (the total stride of an encoder) and the output cropped back.

    ``self_ensemble``: average the outputs over the 8 symmetries of the square (restore the
    flipped/transposed image, undo the symmetry), the geometric self-ensemble of Lim et al.
    2017 ("EDSR", §4.5); 8× the inference cost, no training.
    """
    if noisy.ndim != 2:
        raise ShapeError(f"denoise_image expects a grey image (H, W), got {tuple(noisy.shape)}")
    x = noisy.to(device=device, dtype=torch.float32)[None, None]

    def padded_restore(image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        pad_h, pad_w = (-h) % multiple, (-w) % multiple
        if pad_h or pad_w:
            image = nn.functional.pad(image, (0, pad_w, 0, pad_h), mode="reflect")
        return restore(image)[..., :h, :w]

    if self_ensemble:
        views = [dihedral(padded_restore(dihedral(x, i)), i, inverse=True) for i in range(8)]
        out = torch.stack(views).mean(dim=0)
    else:
        out = padded_restore(x)
    return out[0, 0].clamp(0.0, 1.0).to(noisy.device)


def check_denoiser_data(model: str, spec: Any) -> None:
    """Denoisers here learn from clean signals (or corrupted/clean pairs): refuse training on
    the noisy test image itself, which would teach them to reproduce its noise."""
    if contracts.TrainsOnNoisy in spec.capabilities("dataset"):
        raise ConfigError(
            "dataset.train_on",
            f"model={model} learns to remove noise from clean training data (it adds the noise)",
            "use dataset.train_on=clean, or dataset=image_crops",
        )
