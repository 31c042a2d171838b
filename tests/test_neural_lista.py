"""LISTA: at the ISTA values it is ISTA (to float precision); trained, it beats its start; its
cosine schedule and square-patch symmetries do what they document."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import bare_trainer
from torch.utils.data import DataLoader

from sparseland import build
from sparseland.errors import ConfigError
from sparseland.interfaces import ModelContext, SparselandDataModule
from sparseland.plugins.datasets.patches import SignalDataset
from sparseland.plugins.neural.lista import Lista, square_symmetries
from sparseland.registry import make_config


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


@pytest.mark.parametrize(
    ("coupled", "momentum", "threshold", "positive"),
    [
        (True, False, "constant", False),  # LISTA-CP at ISTA's W: ISTA
        (True, True, "constant", False),  # with FISTA's momenta: FISTA
        (False, True, "input_norm", False),  # γ = 0 at the start: the thresholds are λ/L
        (True, True, "input_norm", True),
    ],
)
def test_lista_variants_start_as_ista_or_fista(
    coupled: bool, momentum: bool, threshold: str, positive: bool
) -> None:
    x, _ = vectors()
    n_layers = 9
    pursuit = build("pursuit", "fista", lam=0.1, positive=positive)
    config = make_config(
        "model",
        "lista",
        n_layers=n_layers,
        init="gaussian",
        n_atoms=32,
        coupled=coupled,
        momentum=momentum,
        threshold=threshold,
    )
    model = Lista(config, ModelContext(datamodule(x), pursuit=pursuit))
    reference = build(
        "pursuit",
        "fista" if momentum else "ista",
        lam=0.1,
        max_iter=n_layers,
        tol=0.0,
        positive=positive,
        compute_gap=False,
    )
    expected = reference(x, model.D)
    with torch.no_grad():
        got = model.encode(x)
    assert (expected != 0).any()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    if momentum:  # and FISTA's momentum does differ from ISTA here
        ista = build("pursuit", "ista", lam=0.1, max_iter=n_layers, tol=0.0, compute_gap=False)
        assert not torch.allclose(ista(x, model.D), expected, atol=1e-4)


def test_coupled_lista_learns_only_w_and_its_input_norm_thresholds_scale_with_x() -> None:
    x, _ = vectors(n=64)
    model = lista(x, n_layers=3, n_atoms=32, coupled=True, threshold="input_norm")
    names = {name for name, _ in model.network.named_parameters()}
    assert names == {"w_e", "theta", "gamma"}  # S = I − W D is implied, not learned
    with torch.no_grad():
        # with θ = 0 the thresholds are 0.05‖x‖: a first layer h(W x) of scaled inputs scales
        one_layer = lista(x, n_layers=1, n_atoms=32, threshold="input_norm")
        one_layer.network.gamma.fill_(0.05)
        one_layer.network.theta.zero_()
        torch.testing.assert_close(one_layer.encode(3 * x), 3 * one_layer.encode(x))
        v = x @ one_layer.network.w_e[0].T
        expected = torch.sign(v) * torch.relu(v.abs() - 0.05 * x.norm(dim=1, keepdim=True))
        torch.testing.assert_close(one_layer.encode(x), expected)
    with pytest.raises(ConfigError, match="threshold"):
        make_config("model", "lista", threshold="adaptive")


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


def test_cosine_schedule_follows_the_half_cosine_from_lr_to_zero() -> None:
    x, _ = vectors(n=64)
    model = lista(x, n_layers=2, lr=0.01, lr_steps=8, n_atoms=32)
    configured = model.configure_optimizers()
    assert isinstance(configured, dict)
    optimizer = configured["optimizer"]
    scheduler = configured["lr_scheduler"]["scheduler"]
    assert configured["lr_scheduler"]["interval"] == "step"
    seen = []
    for _ in range(8):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    seen.append(optimizer.param_groups[0]["lr"])
    expected = [0.01 * 0.5 * (1 + math.cos(math.pi * t / 8)) for t in range(9)]
    assert seen == pytest.approx(expected, abs=1e-12)


def test_constant_schedule_and_no_horizon_give_a_bare_adam() -> None:
    x, _ = vectors(n=64)
    constant = lista(x, n_layers=2, lr_schedule="constant", lr_steps=8, n_atoms=32)
    assert isinstance(constant.configure_optimizers(), torch.optim.Adam)
    no_trainer = lista(x, n_layers=2, n_atoms=32)  # cosine, lr_steps=0, no trainer attached
    assert isinstance(no_trainer.configure_optimizers(), torch.optim.Adam)
    with pytest.raises(ConfigError, match="lr_schedule"):
        make_config("model", "lista", lr_schedule="step")


def test_cosine_schedule_spans_the_trainers_steps(tmp_path: Path) -> None:
    x, _ = vectors(n=64)
    model = lista(x, n_layers=2, lr=0.01, n_atoms=32, target="lasso")
    loader = DataLoader(SignalDataset(x, x), batch_size=16)
    trainer = bare_trainer(tmp_path, max_steps=6)
    trainer.fit(model, train_dataloaders=loader)
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR)
    assert scheduler.T_max == 6
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def dihedral_images(patch: torch.Tensor) -> list[torch.Tensor]:
    """The 8 symmetries of a square patch: 4 rotations, each also mirrored."""
    rotations = [torch.rot90(patch, r) for r in range(4)]
    return rotations + [r.flip(1) for r in rotations]


def test_square_symmetries_send_each_patch_to_one_of_its_eight_images() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 16, generator=gen)
    out = square_symmetries(x, 4, torch.Generator().manual_seed(1))
    hits = set()
    for row, new in zip(x, out):
        images = [image.reshape(16) for image in dihedral_images(row.reshape(4, 4))]
        matches = [i for i, image in enumerate(images) if torch.equal(image, new)]
        assert matches
        hits.add(matches[0])
    assert hits == set(range(8))  # all 8 drawn


def test_augmentation_applies_to_square_patches_only_while_training() -> None:
    x, _ = vectors(n=64)
    dm = datamodule(x)
    dm.patch_shape = (4, 4)  # type: ignore[attr-defined]
    pursuit = build("pursuit", "fista", lam=0.1, max_iter=100, tol=1e-6, compute_gap=False)
    config = make_config("model", "lista", init="gaussian", n_atoms=32, target="lasso")
    model = Lista(config, ModelContext(dm, pursuit=pursuit))
    assert model.square_side == 4
    with torch.no_grad():
        plain = model.objective(x, model.encode(x)).mean()
        model.eval()
        assert float(model.loss({"x": x})[0]) == pytest.approx(float(plain), rel=1e-6)
        model.train()
        torch.manual_seed(0)
        augmented = model.loss({"x": x})[0]
        torch.manual_seed(0)
        expected = square_symmetries(x, 4)
        reference = model.objective(expected, model.encode(expected)).mean()
    assert float(augmented) == pytest.approx(float(reference), rel=1e-6)
    assert float(augmented) != pytest.approx(float(plain), rel=1e-6)
    assert lista(x, n_atoms=32).square_side == 0  # vectors without a patch shape
