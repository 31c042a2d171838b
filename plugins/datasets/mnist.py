"""Dataset ``mnist``: MNIST read from the user's local IDX files (nothing is downloaded).

``dataset.root`` is a folder holding the four files of LeCun's distribution,
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
``t10k-labels-idx1-ubyte``, each optionally gzipped (``.gz``). IDX format: two zero bytes,
a type code (0x08: unsigned byte), the number of dimensions, each dimension as a big-endian
int32, then the data in C order.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sparseland import PluginConfig, option, register_dataset
from sparseland.errors import DataNotFoundError, ShapeError, check
from sparseland.plugins.datasets.labelled_images import LabelledImagesDataModule, stratified_split

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass
class MnistConfig(PluginConfig):
    root: str = option("data/mnist", "folder holding (or receiving) the MNIST files")
    n_train: int = option(0, "use only the first n training images (0: all)")
    n_test: int = option(0, "use only the first n test images (0: all)")
    val_fraction: float = option(0.1, "share of the training images held out for validation")
    flatten: bool = option(False, "x as rows (n, 784) instead of images (n, 1, 28, 28)")
    batch_size: int = option(128, "images per batch")
    seed: int = option(0, "seed of the validation split")

    def __post_init__(self) -> None:
        check(self.n_train >= 0, "n_train", f"must be >= 0, got {self.n_train}")
        check(self.n_test >= 0, "n_test", f"must be >= 0, got {self.n_test}")
        check(
            0 < self.val_fraction < 1, "val_fraction", f"must be in (0, 1), got {self.val_fraction}"
        )
        check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzipped) as a uint8 array of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ShapeError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ShapeError(f"{path}: header says shape {dims} but holds {body.size} values")
    return body.reshape(dims)


def find_file(root: Path, name: str) -> Path:
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataNotFoundError(
        f"MNIST file {name}[.gz] not found in {root.resolve()}; dataset.root must be a folder "
        f"with {', '.join(FILES.values())} (optionally .gz); Sparseland never downloads"
    )


@register_dataset("mnist", config=MnistConfig)
class MnistDataModule(LabelledImagesDataModule):
    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        c = self.config
        root = Path(c.root).expanduser()
        arrays = {key: read_idx(find_file(root, name)) for key, name in FILES.items()}
        pixels: dict[str, torch.Tensor] = {}
        labels: dict[str, torch.Tensor] = {}
        for split, limit in (("train", c.n_train), ("test", c.n_test)):
            x, y = arrays[f"{split}_images"], arrays[f"{split}_labels"]
            if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
                raise ShapeError(
                    f"MNIST {split}: {x.shape[0]} images of shape "
                    f"{x.shape[1:]} and {y.shape[0]} labels do not match"
                )
            keep = limit or x.shape[0]
            pixels[split] = torch.from_numpy(x[:keep].astype(np.float32) / 255.0)
            labels[split] = torch.from_numpy(y[:keep].astype(np.int64))
        gen = torch.Generator().manual_seed(c.seed)
        train, val = stratified_split(labels["train"], c.val_fraction, gen)
        split_images = {
            "train": pixels["train"][train],
            "val": pixels["train"][val],
            "test": pixels["test"],
        }
        split_labels = {
            "train": labels["train"][train],
            "val": labels["train"][val],
            "test": labels["test"],
        }
        n_classes = max(int(v.max()) for v in labels.values()) + 1
        self.finish_setup(split_images, split_labels, n_classes=max(n_classes, 10))
        self._ready = True
