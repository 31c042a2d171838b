"""Dataset ``image_crops``: (noisy, clean) crops of bundled images, for training denoisers.

Training batches are fresh random crops of the training images every step, augmented by
flips and 90° rotations, then corrupted: by the run's corruption preprocessor
(``preprocess=gaussian_noise|poisson_noise|knockout``) or, with ``preprocess=none``, by
Gaussian noise of ``dataset.sigma`` (0–255 scale). Validation and test crops come from the
test images (disjoint from training) with fixed noise. Batches: ``x`` the corrupted crops
(n, 1, c, c), ``clean`` and ``raw`` the clean ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from sparseland import PluginConfig, option, register_dataset
from sparseland.errors import ConfigError, check
from sparseland.interfaces import Preprocessor, SparselandDataModule, contracts
from sparseland.plugins.datasets.natural_images import BUNDLED, check_image_split, load_image
from sparseland.plugins.preprocess.patches import random_patches

# The bundled natural scenes and textures, less the test image (camera) and the rest
TRAIN_IMAGES = [
    name
    for name in BUNDLED
    if name not in ("camera", "cat", "hubble_deep_field", "immunohistochemistry", "page", "text")
]


@dataclass
class ImageCropsConfig(PluginConfig):
    train_images: list[str] = option(
        list(TRAIN_IMAGES), "bundled scikit-image names or image paths to crop for training"
    )
    test_images: list[str] = option(["camera"], "images denoised whole at test time")
    crop_size: int = option(40, "side of the square training crops, in pixels")
    sigma: float = option(
        25.0, "Gaussian noise (0–255 scale) when no corruption preprocessor is set"
    )
    augment: bool = option(True, "random flips and 90° rotations of the training crops")
    # the split fields every dataset declares, one meaning across datasets (docs/plugins.md)
    n_train: int = option(8192, "crops per epoch")
    n_val: int = option(256, "validation crops")
    n_test: int = option(512, "test crops")
    batch_size: int = option(64, "crops per batch")
    seed: int = option(0, "seed of the crops and the noise")

    def __post_init__(self) -> None:
        check(self.crop_size >= 4, "crop_size", f"must be >= 4, got {self.crop_size}")
        check(self.sigma >= 0, "sigma", f"must be >= 0, got {self.sigma}")
        values = vars(self)
        for key in ("n_train", "n_val", "n_test", "batch_size"):
            check(values[key] >= 1, key, f"must be >= 1, got {values[key]}")
        check_image_split(self.train_images, self.test_images)


def augment(crops: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal / vertical flips and transposition of each crop (n, 1, c, c): the
    eight symmetries of the square, drawn independently per crop (vectorised)."""
    n = crops.shape[0]
    flips = torch.rand(n, 3, generator=generator) < 0.5
    out = torch.where(flips[:, 0, None, None, None], crops.flip(-1), crops)
    out = torch.where(flips[:, 1, None, None, None], out.flip(-2), out)
    return torch.where(flips[:, 2, None, None, None], out.transpose(-1, -2), out)


class RandomCropBatches(Dataset[dict[str, torch.Tensor]]):
    """Item i is a whole batch of fresh random crops (so crops are drawn vectorised)."""

    def __init__(self, module: ImageCropsDataModule, images: list[torch.Tensor]) -> None:
        self.module, self.images = module, images
        c = module.config
        self.n_batches = max(1, c.n_train // c.batch_size)
        self.generator = torch.Generator().manual_seed(c.seed + 1)

    def __len__(self) -> int:
        return self.n_batches

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        c = self.module.config
        crops = random_patches(self.images, c.batch_size, c.crop_size, self.generator)
        crops = crops.reshape(-1, 1, c.crop_size, c.crop_size)
        if c.augment:
            crops = augment(crops, self.generator)
        return {"x": self.module.corrupt(crops), "clean": crops, "raw": crops}


class FixedCrops(Dataset[dict[str, torch.Tensor]]):
    def __init__(self, noisy: torch.Tensor, clean: torch.Tensor) -> None:
        self.noisy, self.clean = noisy, clean

    def __len__(self) -> int:
        return int(self.noisy.shape[0])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.noisy[i], "clean": self.clean[i], "raw": self.clean[i]}


@register_dataset("image_crops", config=ImageCropsConfig)
class ImageCropsDataModule(SparselandDataModule):
    signal_kind = "image"

    def __init__(self, config: ImageCropsConfig, preprocessor: Preprocessor | None = None) -> None:
        super().__init__(config, preprocessor)
        allowed = {contracts.Identity, contracts.Corruption}
        if preprocessor is not None and not allowed & preprocessor.capabilities():
            raise ConfigError(
                "preprocess",
                f"dataset=image_crops pairs corrupted and clean crops; "
                f"'{preprocessor.config.name}' is not a corruption (capability Corruption)",
                "use preprocess=none (noise of dataset.sigma) or gaussian_noise, "
                "poisson_noise, knockout",
            )
        self.signal_shape = (1, config.crop_size, config.crop_size)

    def corrupt(self, clean: torch.Tensor) -> torch.Tensor:
        if self.preprocessor is not None and self.preprocessor.corrupts:
            return self.preprocessor.transform(clean)
        return clean + (self.config.sigma / 255.0) * torch.randn_like(clean)

    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        c = self.config
        self.train_images = [load_image(n) for n in c.train_images]
        self.test_images = {n: load_image(n) for n in c.test_images}
        gen = torch.Generator().manual_seed(c.seed)
        self.splits: dict[str, Dataset[dict[str, torch.Tensor]]] = {
            "train": RandomCropBatches(self, self.train_images)
        }
        for split, n in (("val", c.n_val), ("test", c.n_test)):
            clean = random_patches(list(self.test_images.values()), n, c.crop_size, gen)
            clean = clean.reshape(-1, 1, c.crop_size, c.crop_size)
            with torch.random.fork_rng():
                torch.manual_seed(c.seed + (2 if split == "val" else 3))
                self.splits[split] = FixedCrops(self.corrupt(clean), clean)
        self._ready = True

    def train_dataloader(self) -> DataLoader[dict[str, torch.Tensor]]:
        return DataLoader(self.splits["train"], batch_size=None, shuffle=False)

    def val_dataloader(self) -> DataLoader[dict[str, torch.Tensor]]:
        return DataLoader(self.splits["val"], batch_size=self.config.batch_size)

    def test_dataloader(self) -> DataLoader[dict[str, torch.Tensor]]:
        return DataLoader(self.splits["test"], batch_size=self.config.batch_size)
