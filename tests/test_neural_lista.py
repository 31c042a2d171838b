"""LISTA: at the ISTA values it is ISTA (to float precision); trained, it beats its start."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from framework import build
from framework.errors import ConfigError
from framework.interfaces import ModelContext, SparselandDataModule
from framework.registry import make_config
from plugins.neural.lista import Lista


@pytest.fixture(autouse=True)
def one_thread() -> object:
    """Tiny tensors: one thread is much faster than two on a shared, busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def vectors(n: int = 256, m: int = 16, k: int = 32, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Signals that are sparse combinations of a random unit-norm dictionary, plus noise."""
    gen = torch.Generator().manual_seed(seed)
    D = torch.randn(m, k, generator=gen)
    D /= D.norm(dim=0)
    codes = torch.randn(n, k, generator=gen) * (torch.rand(n, k, generator=gen) < 0.15)
    x = codes @ D.T + 0.05 * torch.randn(n, m, generator=gen)
    return x, D


def datamodule(x: torch.Tensor) -> SparselandDataModule:
    dm = SparselandDataModule(config=None)
    dm.signal_shape = (x.shape[1],)
    dm.splits = {"train": SimpleNamespace(x=x)}  # type: ignore[attr-defined]
    return dm


def lista(x: torch.Tensor, lam: float = 0.1, **params: object) -> Lista:
    pursuit = build("pursuit", "fista", lam=lam, max_iter=100, tol=1e-6, compute_gap=False)
    config = make_config("model", "lista", init="gaussian", **params)
    return Lista(config, ModelContext(datamodule(x), pursuit=pursuit))


@pytest.mark.parametrize(
    ("n_layers", "tied", "positive"), [(1, True, False), (7, False, False), (12, True, True)]
)
def test_lista_at_ista_values_equals_t_ista_iterations(
    n_layers: int, tied: bool, positive: bool
) -> None:
    x, _ = vectors()
    pursuit = build("pursuit", "fista", lam=0.1, positive=positive)
    config = make_config(
        "model", "lista", n_layers=n_layers, tied=tied, init="gaussian", n_atoms=32
    )
    model = Lista(config, ModelContext(datamodule(x), pursuit=pursuit))
    D = model.D  # its (fixed, random) dictionary; the weights start at ISTA's values for it
    ista = build(
        "pursuit", "ista", lam=0.1, max_iter=n_layers, tol=0.0, positive=positive, compute_gap=False
    )
    expected = ista(x, D)
    assert ista.info is not None and ista.info.iterations == n_layers
    with torch.no_grad():
        got = model.encode(x)
    assert (expected != 0).any()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_lista_learns_a_better_lasso_objective_than_its_ista_start() -> None:
    x, _ = vectors(n=512)
    train, held_out = x[:384], x[384:]
    model = lista(train, n_layers=3, target="lasso", lr=1e-2, n_atoms=32)
    opt = model.configure_optimizers()
    with torch.no_grad():
        before = float(model.objective(held_out, model.encode(held_out)).mean())
    for _ in range(60):
        loss, _ = model.loss({"x": train})
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(model.objective(held_out, model.encode(held_out)).mean())
    optimum = float(model.objective(held_out, model.pursuit(held_out, model.D)).mean())
    assert after < before
    assert (after - optimum) < 0.5 * (before - optimum)  # closes at least half of the gap


def test_lista_fista_target_overfits_a_tiny_batch() -> None:
    x, _ = vectors(n=32)
    model = lista(x, n_layers=5, target="fista", lr=1e-2, n_atoms=32)
    opt = model.configure_optimizers()
    losses = []
    for _ in range(60):
        loss, _ = model.loss({"x": x})
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] / 10


def test_lista_refuses_a_pursuit_without_lam() -> None:
    spec = {"pursuit": None}
    with pytest.raises(ConfigError, match="Lasso pursuit"):
        Lista.check_compatible(spec)
