"""PSD: the energy's inference is exact, and training brings F(x) closer to the pursuit's codes
on held-out natural-image patches."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from sparseland import build
from sparseland.interfaces import ModelContext, SparselandDataModule
from sparseland.plugins.datasets.natural_images import load_image
from sparseland.plugins.neural.psd import PredictiveSparseDecomposition
from sparseland.plugins.preprocess.patches import random_patches
from sparseland.registry import make_config


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def patches(image: str, n: int, seed: int) -> torch.Tensor:
    x = random_patches([load_image(image)], n, 8, torch.Generator().manual_seed(seed))
    x = x - x.mean(dim=1, keepdim=True)  # DC removed, as preprocess=dc does
    return x / x.norm(dim=1).mean()


def psd(train: torch.Tensor, **params: Any) -> PredictiveSparseDecomposition:
    dm = SparselandDataModule(config=None)
    dm.signal_shape = (train.shape[1],)
    dm.splits = {"train": SimpleNamespace(x=train)}  # type: ignore[attr-defined]
    pursuit = build("pursuit", "fista", lam=0.05, max_iter=150, tol=1e-6, compute_gap=False)
    return PredictiveSparseDecomposition(
        make_config("model", "psd", **params), ModelContext(dm, pursuit=pursuit)
    )


def test_inference_minimises_the_psd_energy() -> None:
    """z* from the stacked Lasso satisfies the optimality conditions of the PSD energy:
    g = Dᵀ(Dz − x) + α(z − F(x)); g_i = −λ sign(z_i) where z_i ≠ 0, |g_i| ≤ λ elsewhere."""
    x = patches("astronaut", 64, seed=0)
    model = psd(x, n_atoms=32, alpha=0.7)
    model.pursuit.config.max_iter, model.pursuit.config.tol = 3000, 1e-10
    with torch.no_grad():
        prediction = model.encode(x) + 0.1
        z = model.infer(x, prediction)
        D = model.D
        g = (z @ D.T - x) @ D + 0.7 * (z - prediction)
    active = z != 0
    assert active.any()
    torch.testing.assert_close(g[active], -0.05 * torch.sign(z[active]), atol=2e-4, rtol=0)
    assert float(g[~active].abs().max()) <= 0.05 + 2e-4


@pytest.mark.parametrize("encoder", ["shrink", "tanh"])
def test_training_brings_the_encoder_closer_to_the_pursuit_on_held_out_patches(
    encoder: str,
) -> None:
    torch.manual_seed(0)
    train, held_out = patches("astronaut", 2048, seed=1), patches("camera", 512, seed=2)
    model = psd(train, n_atoms=64, encoder=encoder, lr=3e-3)
    before = float(model.code_error(held_out))
    optimizer = model.configure_optimizers()
    for step in range(60):
        batch = train[(step * 128) % 2048 :][:128]
        loss, _ = model.loss({"x": batch})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = float(model.code_error(held_out))
    assert after < 0.8 * before, (before, after)
    # atoms stay unit-norm: the normalisation is part of the model
    torch.testing.assert_close(model.D.norm(dim=0), torch.ones(64))
