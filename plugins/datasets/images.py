"""Dataset ``images``: one whole test image with additive Gaussian noise, for task ``denoise``.

The image is a scikit-image bundled image (``camera``, ``astronaut``, ...) or a path to the
user's own file, grey in [0, 1]. Noise: y = x + (σ/255)·n, n ~ N(0, I) drawn from a torch
generator seeded with ``seed`` (σ in grey levels, as in the denoising literature; no clipping).

Patch models train on p×p patches (rows): ``train_on=noisy`` draws them from the noisy image
itself (Elad and Aharon 2006's adaptive dictionary), ``train_on=clean`` from the clean
``train_images`` (a global dictionary). Validation patches come from the noisy image. The
whole images are exposed as ``noisy_image``, ``clean_image`` (H, W) and the noise level as
``sigma`` (in [0, 1] units), which is what task ``denoise`` passes to ``model.denoise_image``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from sparseland import PluginConfig, option, register_dataset
from sparseland.errors import check
from sparseland.interfaces import SparselandDataModule, contracts
from sparseland.plugins.datasets.natural_images import load_image
from sparseland.plugins.datasets.patches import SignalDataset
from sparseland.plugins.preprocess.patches import random_patches

TRAIN_SOURCES = ("noisy", "clean")


@dataclass
class ImagesConfig(PluginConfig):
    image: str = option("camera", "a bundled scikit-image name or a path to an image file")
    sigma: float = option(25.0, "noise standard deviation in grey levels [0, 255]")
    train_on: str = option(
        "noisy", "noisy: learn on the noisy image's patches; clean: on train_images"
    )
    train_images: list[str] = option(
        ["astronaut", "coffee", "chelsea"], "clean images to learn from when train_on is clean"
    )
    # the split fields every dataset declares, one meaning across datasets (docs/plugins.md)
    patch_size: int = option(8, "side of the square patches, in pixels")
    n_train: int = option(40000, "training patches")
    n_val: int = option(2000, "validation patches")
    batch_size: int = option(4096, "patches per batch")
    seed: int = option(0, "seed of the noise and the patch positions")

    def __post_init__(self) -> None:
        check(self.sigma >= 0, "sigma", f"must be >= 0, got {self.sigma}", "σ is in grey levels")
        check(
            self.train_on in TRAIN_SOURCES,
            "train_on",
            f"'{self.train_on}' is not a source",
            f"choose one of {', '.join(TRAIN_SOURCES)}",
        )
        check(self.patch_size >= 2, "patch_size", f"must be >= 2, got {self.patch_size}")
        values = vars(self)
        for key in ("n_train", "n_val", "batch_size"):
            check(values[key] >= 1, key, f"must be >= 1, got {values[key]}")
        check(
            self.train_on == "noisy" or bool(self.train_images),
            "train_images",
            "is empty",
            "name at least one clean training image",
        )
        check(
            self.image not in self.train_images or self.train_on == "noisy",
            "train_images",
            f"contains the test image '{self.image}'",
            "train on other images",
        )


@register_dataset("images", config=ImagesConfig)
class ImagesDataModule(SparselandDataModule):
    provides = (contracts.NoisyImage, contracts.PatchGeometry)

    @classmethod
    def capabilities(cls, config: Any = None) -> frozenset[type]:
        noisy = config is not None and config.train_on == "noisy"
        return super().capabilities(config) | ({contracts.TrainsOnNoisy} if noisy else set())

    signal_kind = "vector"

    # setup's opening, alike in every dataset: runs once, draws from the run's seed
    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        c = self.config
        gen = torch.Generator().manual_seed(c.seed)
        self.clean_image = load_image(c.image)
        self.sigma = c.sigma / 255.0
        noise = torch.randn(self.clean_image.shape, generator=gen)
        self.noisy_image = self.clean_image + self.sigma * noise
        sources = (
            [self.noisy_image] if c.train_on == "noisy" else [load_image(n) for n in c.train_images]
        )
        raw = {
            "train": random_patches(sources, c.n_train, c.patch_size, gen),
            "val": random_patches([self.noisy_image], c.n_val, c.patch_size, gen),
        }
        raw["test"] = raw["val"]
        transform = self.fit_preprocessor(raw["train"])
        self.splits = {k: SignalDataset(transform(v), v) for k, v in raw.items()}
        self.signal_shape = (c.patch_size * c.patch_size,)
        self.patch_shape = (c.patch_size, c.patch_size)
        self._ready = True
