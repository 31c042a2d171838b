"""Datasets of the neural methods: digits, MNIST from local IDX files, (noisy, clean) crops."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sparseland import build
from sparseland.errors import ConfigError, DataNotFoundError


def datamodule(name: str, preprocess: Any = None, **params: Any) -> Any:
    from sparseland.registry import get, make_config

    dm = get("dataset", name).cls(make_config("dataset", name, **params), preprocess)
    dm.setup("fit")
    return dm


def test_digits_splits_are_disjoint_stratified_and_scaled() -> None:
    from sklearn.datasets import load_digits

    dm = datamodule("digits")
    sizes = {k: len(v) for k, v in dm.splits.items()}
    assert sum(sizes.values()) == 1797 and sizes["test"] == pytest.approx(0.25 * 1797, abs=10)
    assert dm.signal_shape == (1, 8, 8) and dm.n_classes == 10 and dm.has_labels
    batch = next(iter(dm.test_dataloader()))
    assert batch["x"].shape[1:] == (1, 8, 8) and float(batch["x"].max()) <= 1.0
    for split in dm.splits.values():  # every class in every split, in proportion
        counts = torch.bincount(split.y, minlength=10).float()
        assert float(counts.min()) >= 0.8 * float(counts.mean())
    # the images are sklearn's, /16, with their labels
    data = load_digits()
    first = dm.splits["test"]
    rows = (torch.from_numpy(data.images).float() / 16).reshape(1797, -1)
    match = (rows[:, None, :] == first.raw.reshape(len(first), -1)[None]).all(-1)
    index = match.float().argmax(dim=0)
    assert bool(match.any(dim=0).all())
    assert torch.equal(torch.from_numpy(data.target)[index], first.y)


def test_digits_flatten_and_preprocessing_on_rows() -> None:
    dm = datamodule("digits", build("preprocess", "dc"), flatten=True)
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape[1:] == (64,) and dm.signal_shape == (64,)
    torch.testing.assert_close(batch["x"].mean(dim=1), torch.zeros(batch["x"].shape[0]))
    assert float(batch["raw"].min()) >= 0.0


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def fake_mnist(root: Path, gz: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (50, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(50) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28)),
        "t10k-labels-idx1-ubyte": (np.arange(20) * 3) % 10,
    }
    for name, array in arrays.items():
        write_idx(root / name, array, gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_local_idx_files(tmp_path: Path, gz: bool) -> None:
    arrays = fake_mnist(tmp_path, gz)
    dm = datamodule("mnist", root=str(tmp_path), val_fraction=0.2)
    assert (len(dm.splits["train"]), len(dm.splits["val"]), len(dm.splits["test"])) == (40, 10, 20)
    assert dm.signal_shape == (1, 28, 28) and dm.n_classes == 10
    test = dm.splits["test"]
    expected = torch.from_numpy(arrays["t10k-images-idx3-ubyte"].astype(np.float32) / 255)
    torch.testing.assert_close(test.raw[:, 0], expected)
    assert torch.equal(test.y, torch.from_numpy(arrays["t10k-labels-idx1-ubyte"]).long())


def test_mnist_without_files_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="train-images-idx3-ubyte"):
        datamodule("mnist", root=str(tmp_path / "nowhere"))


def test_image_crops_pairs_noisy_and_clean_crops(tmp_path: Path) -> None:
    torch.manual_seed(0)
    dm = datamodule(
        "image_crops",
        train_images=["coins"],
        test_images=["camera"],
        crop_size=16,
        n_train=256,
        n_val=32,
        n_test=32,
        batch_size=128,
        sigma=25.0,
    )
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == batch["clean"].shape == (128, 1, 16, 16)
    noise = batch["x"] - batch["clean"]
    assert float(noise.std()) == pytest.approx(25 / 255, rel=0.03)
    val = next(iter(dm.val_dataloader()))
    assert val["x"].shape == (32, 1, 16, 16)
    # the validation noise is fixed, the training crops are fresh
    assert torch.equal(next(iter(dm.val_dataloader()))["x"], val["x"])
    assert not torch.equal(next(iter(dm.train_dataloader()))["clean"], batch["clean"])


def test_image_crops_use_a_corruption_preprocessor_and_refuse_others() -> None:
    dm = datamodule(
        "image_crops",
        build("preprocess", "knockout", block=4, fraction=0.5),
        train_images=["coins"],
        crop_size=16,
        n_train=64,
        batch_size=64,
    )
    batch = next(iter(dm.train_dataloader()))
    knocked = (batch["x"] == 0) & (batch["clean"] != 0)
    assert float(knocked.float().mean()) == pytest.approx(0.5, abs=0.1)
    with pytest.raises(ConfigError, match="not a corruption"):
        datamodule("image_crops", build("preprocess", "zca"))


def test_augmentation_is_a_symmetry_of_the_square() -> None:
    from sparseland.plugins.datasets.image_crops import augment

    crops = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(64, 1, 1, 1)
    out = augment(crops, torch.Generator().manual_seed(0))
    symmetries = {tuple(o.flatten().tolist()) for o in out}
    assert 4 < len(symmetries) <= 8
    assert all(sorted(s) == list(range(16)) for s in symmetries)
