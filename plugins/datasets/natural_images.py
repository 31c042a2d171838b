"""Grey images from scikit-image's bundled set (no download) or from the user's own files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sparseland.errors import DataNotFoundError, check

# Bundled with scikit-image (present in the wheel; nothing is fetched at run time).
BUNDLED = (
    "astronaut",
    "brick",
    "camera",
    "cat",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "rocket",
    "text",
)


def load_image(name: str) -> torch.Tensor:
    """A grey image in [0, 1] as float32 (H, W): a bundled name or a path to an image file."""
    from skimage import io
    from skimage.color import rgb2gray, rgba2rgb
    from skimage.util import img_as_float

    if name in BUNDLED:
        import skimage.data

        array = getattr(skimage.data, name)()
    else:
        path = Path(name).expanduser()
        if not path.is_file():
            raise DataNotFoundError(
                f"image '{name}' is neither a bundled image ({', '.join(BUNDLED)}) "
                f"nor an existing file (looked for {path.resolve()})"
            )
        array = io.imread(path)
    array = img_as_float(array)
    if array.ndim == 3 and array.shape[-1] == 4:
        array = rgba2rgb(array)
    if array.ndim == 3:
        array = rgb2gray(array)
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def check_image_split(train_images: list[str], test_images: list[str]) -> None:
    """A config's training and test images: both named, and disjoint."""
    check(bool(train_images), "train_images", "is empty", "name at least one image")
    check(bool(test_images), "test_images", "is empty", "name at least one image")
    overlap = sorted(set(train_images) & set(test_images))
    check(
        not overlap,
        "test_images",
        f"{overlap} also in train_images",
        "train and test images must be disjoint",
    )
