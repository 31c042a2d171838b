"""Supervised CSC (model cscnet): at its initialisation the unrolled network is ISTA on the
convolutional dictionary, and it learns through the real harness."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from framework.errors import ConfigError
from framework.interfaces import ModelContext, SparselandDataModule
from framework.registry import make_config
from plugins.convolutional.csc_net import CscNet


def datamodule(side: int) -> SparselandDataModule:
    dm = SparselandDataModule(config=None)
    dm.signal_shape = (1, side, side)
    dm.splits = {"train": SimpleNamespace(x=torch.zeros(1, 1, side, side))}  # type: ignore[attr-defined]
    return dm


def cscnet(side: int = 12, **params: Any) -> CscNet:
    config = make_config("model", "cscnet", **params)
    return CscNet(config, ModelContext(datamodule(side)))


def dense_dictionary(model: CscNet, side: int) -> np.ndarray:
    """D (side² × K·side²) of the synthesis with 'same' zero boundaries, built column by column
    with scipy's convolve2d (independent of torch's convolutions), scaled as the model's."""
    filters = model.synthesis.detach()[:, 0].double().numpy()
    columns = []
    for f in filters:
        for i in range(side * side):
            impulse = np.zeros(side * side)
            impulse[i] = 1.0
            columns.append(convolve2d(impulse.reshape(side, side), f, mode="same").ravel())
    return np.stack(columns, axis=1)


def test_tied_initialisation_is_ista_on_the_convolutional_dictionary() -> None:
    """With A = B = C = D = D₁/√L (D₁ unit-norm filters, L ≥ ‖D₁‖²) and thresholds θ, the
    T-unfolding network computes T + 1 ISTA steps from 0 with unit step for
    ½‖y − D z‖² + θ‖z‖₁ (‖D‖ ≤ 1), i.e. ISTA on D₁ with step 1/L and λ = θ√L."""
    side, n_filters, unfoldings = 10, 3, 4
    model = cscnet(side, n_filters=n_filters, filter_size=3, unfoldings=unfoldings, tied=True)
    model = model.double()
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(1, 1, side, side, generator=gen, dtype=torch.float64)
    centred = y - y.mean()
    D = dense_dictionary(model, side)
    assert np.linalg.norm(D, 2) <= 1.0 + 1e-9  # the model's L bounds the operator norm
    theta = float(model.theta.detach()[0, 0])
    target = centred.numpy().ravel()
    z = np.zeros(D.shape[1])
    for _ in range(unfoldings + 1):
        v = z - D.T @ (D @ z - target)
        z = np.sign(v) * np.maximum(np.abs(v) - theta, 0.0)
    with torch.no_grad():
        maps = model.maps(centred)
    np.testing.assert_allclose(maps.numpy().ravel(), z, atol=1e-10)
    assert 0 < np.count_nonzero(z) < z.size  # the thresholds act
    with torch.no_grad():
        restored = model.restore(y)[0, 0]  # x̂ = D z + mean, on the padded image
    assert restored.shape == (side, side)


def test_untied_model_learns_three_filter_banks_and_refuses_colour() -> None:
    model = cscnet(n_filters=4, filter_size=3)
    assert len(model.filters) == 3
    assert all(torch.equal(f, model.filters[0]) for f in model.filters)  # ISTA at the start
    with pytest.raises(ConfigError, match="filter_size"):
        make_config("model", "cscnet", filter_size=4)
    dm = SparselandDataModule(config=None)
    dm.signal_shape = (3, 8, 8)
    with pytest.raises(ConfigError, match="grey"):
        CscNet(make_config("model", "cscnet"), ModelContext(dm))


def test_cscnet_runs_the_denoise_task_end_to_end(make_config: Any, tmp_path: Any) -> None:
    from framework.runner import run

    cfg = make_config(
        "model=cscnet",
        "model.n_filters=8",
        "model.filter_size=5",
        "model.unfoldings=2",
        "model.lr=1e-2",
        "dataset=images",
        "dataset.train_on=clean",
        "dataset.patch_size=16",
        "dataset.n_train=640",
        "dataset.n_val=32",
        "dataset.batch_size=16",
        "task=denoise",
        "preprocess=none",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        small=False,
    )
    metrics = run(cfg, run_dir=tmp_path / "run")
    assert {"test/psnr", "test/ssim", "test/psnr_noisy"} <= set(metrics)
    assert math.isfinite(metrics["test/psnr"])
    assert metrics["test/psnr"] > metrics["test/psnr_noisy"]
