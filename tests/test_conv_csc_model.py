"""Model csc: validation (OMP refused), dictionary learning, the Tikhonov split, denoising."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import bare_trainer
from omegaconf import DictConfig
from torch.utils.data import DataLoader, TensorDataset

from sparseland import build
from sparseland.errors import ConfigError
from sparseland.interfaces import ModelContext, SparselandDataModule
from sparseland.plugins.convolutional.conv_dictionary import ConvDictionary
from sparseland.plugins.convolutional.csc_model import CSCConfig, CSCModel, tikhonov_lowpass
from sparseland.spec import validate


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_omp_with_a_convolutional_dictionary_fails_at_validation(
    make_config: Callable[..., DictConfig],
) -> None:
    cfg = make_config("model=csc", "pursuit=omp", "dataset=images", "task=denoise", small=False)
    with pytest.raises(ConfigError, match=r"explicit matrix of atoms.*csc_admm, fista or ista"):
        validate(cfg)


def test_admm_with_the_full_boundary_fails_at_validation(
    make_config: Callable[..., DictConfig],
) -> None:
    cfg = make_config(
        "model=csc",
        "pursuit=csc_admm",
        "model.boundary=full",
        "dataset=images",
        "task=denoise",
        small=False,
    )
    with pytest.raises(ConfigError, match="circular"):
        validate(cfg)


def test_tikhonov_split_matches_sporco() -> None:
    signal = pytest.importorskip("sporco.signal")
    s = np.random.default_rng(0).random((40, 30))
    low, _ = signal.tikhonov_filter(s, 5.0, 16)
    ours = tikhonov_lowpass(torch.from_numpy(s)[None, None], 5.0, 16)[0, 0].numpy()
    np.testing.assert_allclose(ours, low, atol=1e-12)


class TensorImages(SparselandDataModule):
    signal_kind = "image"

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__(SimpleNamespace(seed=0))
        self.images = images
        self.signal_shape = tuple(images.shape[1:])

    def train_dataloader(self) -> DataLoader:  # type: ignore[type-arg]
        return DataLoader(TensorDataset(self.images), batch_size=4, collate_fn=_as_dict)

    def val_dataloader(self) -> DataLoader:  # type: ignore[type-arg]
        return DataLoader(TensorDataset(self.images[:4]), batch_size=4, collate_fn=_as_dict)


def _as_dict(rows: list[tuple[torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {"x": torch.stack([r[0] for r in rows])}


def _synthetic_images(n: int = 8, size: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    """Images made of 3 known 5×5 filters and sparse spikes (ground truth of the CSC model)."""
    gen = torch.Generator().manual_seed(0)
    filters = torch.randn(3, 1, 5, 5, generator=gen)
    filters -= filters.mean(dim=(2, 3), keepdim=True)
    filters /= filters.flatten(1).norm(dim=1)[:, None, None, None]
    codes = torch.zeros(n, 3, size, size)
    mask = torch.rand(codes.shape, generator=gen) < 0.02
    codes[mask] = torch.randn(int(mask.sum()), generator=gen)
    return ConvDictionary(filters, "circular").forward(codes), filters


def test_dictionary_learning_lowers_the_objective_and_keeps_unit_filters() -> None:
    images, _ = _synthetic_images()
    dm = TensorImages(images)
    pursuit = build("pursuit", "csc_admm", lam=0.05, max_iter=60, tol=1e-4)
    config = CSCConfig(name="csc", n_filters=4, filter_size=5, highpass=0.0, filter_steps=20)
    torch.manual_seed(0)
    model = CSCModel(config, ModelContext(datamodule=dm, pursuit=pursuit))
    before = float(model.objective(images, model.encode(images)).mean())
    bare_trainer(max_epochs=6).fit(model, dm)
    after = float(model.objective(images, model.encode(images)).mean())
    assert after < 0.6 * before
    assert float(model.filters.flatten(1).norm(dim=1).max()) <= 1 + 1e-6


def test_fista_runs_in_the_model_on_the_full_boundary() -> None:
    images, _ = _synthetic_images(n=2, size=16)
    pursuit = build("pursuit", "fista", lam=0.05, max_iter=30)
    config = CSCConfig(name="csc", n_filters=4, filter_size=5, boundary="full", highpass=0.0)
    model = CSCModel(config, ModelContext(datamodule=TensorImages(images), pursuit=pursuit))
    codes = model.encode(images)
    assert codes.shape == (2, 4, 20, 20)
    assert model.decode(codes).shape == images.shape


def test_denoise_image_with_the_true_filters_removes_noise() -> None:
    images, filters = _synthetic_images(n=1, size=48)
    clean = images[0, 0]
    noisy = clean + 0.05 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    pursuit = build("pursuit", "csc_admm", lam=0.05, max_iter=100)
    config = CSCConfig(name="csc", n_filters=3, filter_size=5, highpass=0.0, denoise_scale=1.0)
    model = CSCModel(config, ModelContext(datamodule=TensorImages(images), pursuit=pursuit))
    model.filters.data.copy_(filters)
    estimate = model.denoise_image(noisy, 0.05)
    assert estimate.shape == clean.shape
    assert float((estimate - clean).pow(2).mean()) < 0.6 * float((noisy - clean).pow(2).mean())


@pytest.mark.slow
def test_end_to_end_denoise_on_a_small_image(
    make_config: Callable[..., DictConfig], tmp_path: Path
) -> None:
    from skimage import data, io, transform

    from sparseland.runner import run

    path = tmp_path / "small.png"
    small = transform.resize(data.camera(), (48, 48), anti_aliasing=True)
    io.imsave(path, (small * 255).astype(np.uint8))
    cfg = make_config(
        "model=csc",
        "pursuit=csc_admm",
        "task=denoise",
        "dataset=images",
        "~preprocess",
        "~learner",
        f"dataset.image={path}",
        "dataset.n_train=64",
        "dataset.n_val=16",
        "dataset.batch_size=32",
        "model.n_filters=8",
        "pursuit.max_iter=30",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        "trainer.accelerator=cpu",
        small=False,
    )
    metrics = run(cfg, run_dir=tmp_path / "run")
    assert metrics["test/psnr"] > metrics["test/psnr_noisy"]
