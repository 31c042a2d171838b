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

from sparseland.errors import ConfigError, ShapeError
from sparseland.interfaces import ModelContext, SparselandDataModule
from sparseland.plugins.convolutional.csc_net import CscNet
from sparseland.registry import make_config


def datamodule(side: int) -> SparselandDataModule:
    dm = SparselandDataModule(config=None)
    dm.signal_shape = (1, side, side)
    dm.splits = {"train": SimpleNamespace(x=torch.zeros(1, 1, side, side))}  # type: ignore[attr-defined]
    return dm


def cscnet(side: int = 12, **params: Any) -> CscNet:
    config = make_config("model", "cscnet", **params)
    return CscNet(config, ModelContext(datamodule(side)))


def dense_dictionary(model: CscNet, side: int, stride: int = 1) -> np.ndarray:
    """D (side² × K·n²) of the synthesis with 'same' zero boundaries, built column by column
    with scipy's convolve2d (independent of torch's convolutions), scaled as the model's: one
    column per filter and per pixel on the grid of step ``stride`` (n = ⌈side / stride⌉)."""
    filters = model.synthesis.detach()[:, 0].double().numpy()
    grid = [i for i in range(side * side) if (i // side) % stride == 0 and i % stride == 0]
    columns = []
    for f in filters:
        for i in grid:
            impulse = np.zeros(side * side)
            impulse[i] = 1.0
            columns.append(convolve2d(impulse.reshape(side, side), f, mode="same").ravel())
    return np.stack(columns, axis=1)


@pytest.mark.parametrize("stride", [1, 3])
def test_tied_initialisation_is_ista_on_the_convolutional_dictionary(stride: int) -> None:
    """With A = B = C = D = D₁/√L (D₁ unit-norm filters, L ≥ ‖D₁‖²) and thresholds θ, the
    T-unfolding network computes T + 1 ISTA steps from 0 with unit step for
    ½‖y − D z‖² + θ‖z‖₁ (‖D‖ ≤ 1), i.e. ISTA on D₁ with step 1/L and λ = θ√L; with a
    stride, D₁ holds the filters at the grid positions only."""
    side, n_filters, unfoldings = 10, 3, 4
    model = cscnet(
        side, n_filters=n_filters, filter_size=3, unfoldings=unfoldings, tied=True, stride=stride
    )
    model = model.double()
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(1, 1, side, side, generator=gen, dtype=torch.float64)
    centred = y - y.mean()
    D = dense_dictionary(model, side, stride)
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


def test_shift_ensemble_of_a_strided_model_sums_over_every_grid_position() -> None:
    """With no unfolding, x̂ = Σ_k c_k * S_θ(a_k ⋆ y) sums over the filter positions; a stride
    s keeps one position in s², and the average over the s² shifts of the grid puts every
    position back once: s² times that average is the stride-1 estimate, border included."""
    s, f = 3, 5
    strided = cscnet(n_filters=4, filter_size=f, unfoldings=0, tied=True, stride=s).double()
    dense = cscnet(n_filters=4, filter_size=f, unfoldings=0, tied=True, stride=1).double()
    with torch.no_grad():
        dense.filters[0].copy_(strided.filters[0])
        dense.theta.copy_(strided.theta)
    strided.eval()
    dense.eval()
    gen = torch.Generator().manual_seed(1)
    y = torch.rand(2, 1, 17, 13, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        mean = y.mean(dim=(2, 3), keepdim=True)
        ensemble = strided.restore(y)
        one_shift = strided.restore_with_maps(y)[0]
        full = dense.restore(y)
    np.testing.assert_allclose(
        (s * s * (ensemble - mean)).numpy(), (full - mean).numpy(), atol=1e-12
    )
    assert not torch.allclose(one_shift, ensemble)  # one grid alone is not shift-invariant


def test_untied_model_learns_three_filter_banks_and_refuses_colour() -> None:
    model = cscnet(n_filters=4, filter_size=3, stride=2)
    assert len(model.filters) == 3
    assert all(torch.equal(f, model.filters[0]) for f in model.filters)  # ISTA at the start
    with pytest.raises(ConfigError, match="filter_size"):
        make_config("model", "cscnet", filter_size=4)
    with pytest.raises(ConfigError, match="stride"):
        make_config("model", "cscnet", stride=0)
    with pytest.raises(ConfigError, match="no filter covers"):
        make_config("model", "cscnet", filter_size=5, stride=6)
    with pytest.raises(ShapeError, match="patch_size"):
        cscnet(n_filters=2, filter_size=11, stride=8).restore(torch.zeros(1, 1, 18, 40))
    dm = SparselandDataModule(config=None)
    dm.signal_shape = (3, 8, 8)
    with pytest.raises(ConfigError, match="grey"):
        CscNet(make_config("model", "cscnet"), ModelContext(dm))


def test_cscnet_runs_the_denoise_task_end_to_end(make_config: Any, tmp_path: Any) -> None:
    from sparseland.runner import run

    cfg = make_config(
        "model=cscnet",
        "model.n_filters=8",
        "model.filter_size=5",
        "model.stride=4",
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
