"""Read and write image files (PNG, JPEG, TIFF) as float arrays in [0, 1], (H, W) or (H, W, C)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sparseland.errors import SparselandError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


class NotAnImageError(SparselandError):
    pass


def read_image(path: Path) -> tuple[np.ndarray, int]:
    """The image at ``path`` in [0, 1] units and its bit depth (8, 16, or 32 for floats)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            array = np.asarray(image)
    except (UnidentifiedImageError, OSError) as exc:
        raise NotAnImageError(
            f"{path} is not an image PIL can read ({exc}); give a PNG, JPEG or TIFF file"
        ) from None
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        return array.astype(np.float64) / 65535.0, 16
    if mode == "F":
        return array.astype(np.float64), 32
    if mode not in ("L", "RGB"):  # palette, bilevel, alpha, CMYK: grey or RGB
        with Image.open(path) as image:
            array = np.asarray(image.convert("L" if mode in ("1", "LA") else "RGB"))
    return array.astype(np.float64) / 255.0, 8


def write_image(path: Path, image: np.ndarray, bits: int = 8) -> None:
    """Save ``image`` in [0, 1] (clipped): 8- or 16-bit PNG/JPEG/TIFF, or float TIFF (bits=32)."""
    from PIL import Image

    image = np.clip(image, 0.0, 1.0)
    suffix = path.suffix.lower()
    if bits == 32 and suffix in (".tif", ".tiff") and image.ndim == 2:
        Image.fromarray(image.astype(np.float32), mode="F").save(path)
    elif bits >= 16 and image.ndim == 2 and suffix in (".png", ".tif", ".tiff"):
        Image.fromarray((image * 65535.0 + 0.5).astype(np.uint16)).save(path)
    else:
        Image.fromarray((image * 255.0 + 0.5).astype(np.uint8)).save(path)
