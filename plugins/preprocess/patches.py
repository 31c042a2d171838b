"""Patch extraction from images, and its inverse: averaging overlapping patches back."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sparseland import PluginConfig, option, register_preprocessor
from sparseland.errors import ShapeError, check
from sparseland.interfaces import Preprocessor


@dataclass
class PatchesConfig(PluginConfig):
    size: int = option(8, "side of the square patches, in pixels")
    stride: int = option(1, "step between patches")

    def __post_init__(self) -> None:
        check(self.size >= 1, "size", f"must be >= 1, got {self.size}")
        check(self.stride >= 1, "stride", f"must be >= 1, got {self.stride}")


def extract_patches(image: torch.Tensor, size: int, stride: int = 1) -> torch.Tensor:
    """All ``size``×``size`` patches of a grey image (H, W) on a grid of ``stride``, as rows."""
    if image.ndim != 2:
        raise ShapeError(f"expected a grey image (H, W), got shape {tuple(image.shape)}")
    if size > min(image.shape):
        raise ShapeError(
            f"patch size {size} is larger than the image {tuple(image.shape)}; "
            "use a smaller patch size or a larger image"
        )
    cols = F.unfold(image[None, None], kernel_size=size, stride=stride)  # (1, size², L)
    return cols[0].T.contiguous()


def aggregate_patches(
    patches: torch.Tensor, image_shape: tuple[int, int], size: int, stride: int = 1
) -> torch.Tensor:
    """Average overlapping patches (rows) back into an image: the adjoint of extraction
    divided by how many patches cover each pixel."""
    h, w = image_shape
    summed = F.fold(patches.T[None], (h, w), kernel_size=size, stride=stride)
    ones = torch.ones_like(patches.T[None])
    counts = F.fold(ones, (h, w), kernel_size=size, stride=stride)
    return (summed / counts.clamp_min(1.0))[0, 0]


def random_patches(
    images: list[torch.Tensor], n: int, size: int, generator: torch.Generator
) -> torch.Tensor:
    """``n`` patches at uniformly random positions of randomly chosen images (vectorised)."""
    for image in images:
        if size > min(image.shape):
            raise ShapeError(
                f"dataset.patch_size={size} is larger than an image of shape {tuple(image.shape)}; "
                "use a smaller patch size"
            )
    which = torch.randint(len(images), (n,), generator=generator)
    out = torch.empty(n, size * size)
    offsets = torch.arange(size)
    for i, image in enumerate(images):
        idx = (which == i).nonzero().squeeze(1)
        if idx.numel() == 0:
            continue
        h, w = image.shape
        r = torch.randint(h - size + 1, (idx.numel(),), generator=generator)
        c = torch.randint(w - size + 1, (idx.numel(),), generator=generator)
        rows = (r[:, None] + offsets)[:, :, None]
        cols = (c[:, None] + offsets)[:, None, :]
        out[idx] = image[rows, cols].reshape(idx.numel(), -1)
    return out


@register_preprocessor("patches", config=PatchesConfig)
class PatchExtractor(Preprocessor):
    """Image (H, W) → rows of patches; ``inverse_transform`` averages them back (needs ``raw``,
    the image, for its shape)."""

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return extract_patches(x, self.config.size, self.config.stride)

    def inverse_transform(self, y: torch.Tensor, raw: torch.Tensor | None = None) -> torch.Tensor:
        if raw is None:
            raise ShapeError("patches.inverse_transform needs raw= the image (for its shape)")
        return aggregate_patches(
            y, (raw.shape[-2], raw.shape[-1]), self.config.size, self.config.stride
        )
