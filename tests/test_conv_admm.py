"""csc_admm against sporco's ConvBPDN, against a long FISTA run, and the optimality conditions."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from framework import build
from framework.errors import ConfigError
from framework.lasso import lasso_duality_gap, lasso_objective
from plugins.convolutional.conv_dictionary import ConvDictionary

LAM = 0.1


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _problem(channels: int = 1, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(channels)
    d = rng.standard_normal((6, 6, channels, 6))  # sporco layout (h, w, C, K)
    d /= np.sqrt((d**2).sum(axis=(0, 1, 2)))
    s = rng.standard_normal((size, size, channels))
    return d, s


def _op(d: np.ndarray) -> ConvDictionary:
    return ConvDictionary(torch.from_numpy(d.transpose(3, 2, 0, 1).copy()), "circular")


def _image(s: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(s.transpose(2, 0, 1).copy())[None]


def _admm(x: torch.Tensor, op: ConvDictionary, **params: float) -> torch.Tensor:
    pursuit = build("pursuit", "csc_admm", lam=LAM, max_iter=3000, tol=1e-9, **params)
    return pursuit(x, op)


def test_matches_sporco_convbpdn_objective() -> None:
    """sporco's ADMM (default options) converges on this problem (on some tiny random ones it
    stalls with residuals ~0.1, so the size is chosen where its own residuals reach 1e-9)."""
    cbpdn = pytest.importorskip("sporco.admm.cbpdn")
    rng = np.random.RandomState(0)
    d = rng.randn(6, 6, 8)
    d /= np.sqrt((d**2).sum(axis=(0, 1)))
    s = rng.randn(32, 32)
    opt = cbpdn.ConvBPDN.Options({"MaxMainIter": 3000, "RelStopTol": 1e-9, "Verbose": False})
    solver = cbpdn.ConvBPDN(d, s, LAM, opt)
    z_ref = solver.solve().squeeze()  # (H, W, K)
    assert solver.getitstat().PrimalRsdl[-1] < 1e-8
    op, x = _op(d[:, :, None]), _image(s[:, :, None])
    ref = float(lasso_objective(x, op, torch.from_numpy(z_ref.transpose(2, 0, 1))[None], LAM)[0])
    ours = float(lasso_objective(x, op, _admm(x, op), LAM)[0])
    assert abs(ours - ref) <= 1e-5 * ref


@pytest.mark.parametrize("channels", [1, 3])  # 3: the Woodbury (C × C) solve
def test_matches_long_fista_run_and_optimality(channels: int) -> None:
    d, s = _problem(channels)
    op, x = _op(d), _image(s)
    z = _admm(x, op)
    fista = build("pursuit", "fista", lam=LAM, max_iter=4000, tol=1e-12)(x, op)
    f_admm = float(lasso_objective(x, op, z, LAM)[0])
    f_fista = float(lasso_objective(x, op, fista, LAM)[0])
    assert abs(f_admm - f_fista) <= 1e-6 * f_fista
    # optimality (subgradient) conditions: Dᵀ(s − Dz) = λ sign(z) on the support, |·| ≤ λ off it
    correlation = op.adjoint(x - op.forward(z))
    support = z != 0
    assert float((correlation[support] - LAM * z[support].sign()).abs().max()) < 1e-5
    assert float(correlation[~support].abs().max()) <= LAM * (1 + 1e-5)
    assert float(lasso_duality_gap(x, op, z, LAM)[0]) < 1e-6 * f_admm


def test_non_negative_codes() -> None:
    d, s = _problem()
    op, x = _op(d), _image(s)
    z = _admm(x, op, positive=True)
    assert float(z.min()) >= 0.0
    ref = build("pursuit", "fista", lam=LAM, max_iter=4000, tol=1e-12, positive=True)(x, op)
    f_ref = float(lasso_objective(x, op, ref, LAM)[0])
    assert abs(float(lasso_objective(x, op, z, LAM)[0]) - f_ref) <= 1e-6 * f_ref


def test_batch_of_images_each_solved() -> None:
    d, s = _problem(size=12)
    op = _op(d)
    x = torch.cat([_image(s), 2.0 * _image(s)])
    z = _admm(x, op)
    z1 = _admm(x[1:], op)
    torch.testing.assert_close(z[1:], z1, rtol=1e-5, atol=1e-6)


def test_refuses_the_full_boundary() -> None:
    d, s = _problem()
    op = ConvDictionary(torch.from_numpy(d.transpose(3, 2, 0, 1).copy()), "full")
    with pytest.raises(ConfigError, match="circular"):
        build("pursuit", "csc_admm", lam=LAM)(_image(s), op)
