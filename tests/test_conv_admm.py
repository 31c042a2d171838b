"""csc_admm against sporco's ConvBPDN, against a long FISTA run, and the optimality conditions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from sparseland import build
from sparseland.errors import ConfigError
from sparseland.plugins.convolutional.conv_dictionary import ConvDictionary
from sparseland.problems import Lasso

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


def _admm(x: torch.Tensor, op: ConvDictionary, **params: Any) -> torch.Tensor:
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
    ref = float(Lasso(LAM).objective(x, op, torch.from_numpy(z_ref.transpose(2, 0, 1))[None])[0])
    ours = float(Lasso(LAM).objective(x, op, _admm(x, op))[0])
    assert abs(ours - ref) <= 1e-5 * ref


@pytest.mark.parametrize("channels", [1, 3])  # 3: the Woodbury (C × C) solve
def test_matches_long_fista_run_and_optimality(channels: int) -> None:
    d, s = _problem(channels)
    op, x = _op(d), _image(s)
    z = _admm(x, op)
    fista = build("pursuit", "fista", lam=LAM, max_iter=4000, tol=1e-12)(x, op)
    f_admm = float(Lasso(LAM).objective(x, op, z)[0])
    f_fista = float(Lasso(LAM).objective(x, op, fista)[0])
    assert abs(f_admm - f_fista) <= 1e-6 * f_fista
    # optimality (subgradient) conditions: Dᵀ(s − Dz) = λ sign(z) on the support, |·| ≤ λ off it
    correlation = op.adjoint(x - op.forward(z))
    support = z != 0
    assert float((correlation[support] - LAM * z[support].sign()).abs().max()) < 1e-5
    assert float(correlation[~support].abs().max()) <= LAM * (1 + 1e-5)
    assert float(Lasso(LAM).duality_gap(x, op, z)[0]) < 1e-6 * f_admm


def test_non_negative_codes() -> None:
    d, s = _problem()
    op, x = _op(d), _image(s)
    z = _admm(x, op, positive=True)
    assert float(z.min()) >= 0.0
    ref = build("pursuit", "fista", lam=LAM, max_iter=4000, tol=1e-12, positive=True)(x, op)
    f_ref = float(Lasso(LAM).objective(x, op, ref)[0])
    assert abs(float(Lasso(LAM).objective(x, op, z)[0]) - f_ref) <= 1e-6 * f_ref


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


@pytest.mark.parametrize("size", [6, 11])  # 6: Dᵀq by direct correlation, 11: by FFT
@pytest.mark.parametrize("per_filter", [False, True])
def test_single_channel_step_matches_a_dense_solve(size: int, per_filter: bool) -> None:
    """The one-FFT iteration for grey images equals (āaᵀ + R) x̂ = āŝ + R t̂ solved densely at
    every frequency, R = diag(ρ_{n,k}), then x_r + u; and the Woodbury step for one ρ."""
    from sparseland.plugins.convolutional.csc_admm import MultiChannelStep, SingleChannelStep

    gen = torch.Generator().manual_seed(size)
    k, n, h, w = 5, 2, 20, 18
    op = ConvDictionary(torch.randn(k, 1, size, size, generator=gen, dtype=torch.float64))
    x = torch.randn(n, 1, h, w, generator=gen, dtype=torch.float64)
    y = torch.randn(n, k, h, w, generator=gen, dtype=torch.float64)
    u = torch.randn(n, k, h, w, generator=gen, dtype=torch.float64)
    shape = (n, k, 1, 1) if per_filter else (n, 1, 1, 1)
    rho = 0.5 + 3 * torch.rand(shape, generator=gen, dtype=torch.float64)
    fast = SingleChannelStep(x, op, 1.8)
    assert fast.direct == (size * size <= 100)
    fast.set_rho(rho)
    a = op.spectrum((h, w), x)[:, 0].permute(1, 2, 0)  # (U, V, K)
    r = torch.diag_embed(rho.expand(n, k, 1, 1)[..., 0, 0]).to(a.dtype)[:, None, None]
    lhs = a.conj()[..., :, None] * a[..., None, :] + r  # (n, U, V, K, K)
    t_hat = torch.fft.rfft2(y - u).permute(0, 2, 3, 1)  # (n, U, V, K)
    s_hat = torch.fft.rfft2(x)[:, 0, ..., None]
    rhs = a.conj() * s_hat + (r @ t_hat[..., None])[..., 0]
    x_hat = torch.linalg.solve(lhs, rhs[..., None])[..., 0].permute(0, 3, 1, 2)
    expected = torch.lerp(y, torch.fft.irfft2(x_hat, s=(h, w)), 1.8) + u
    torch.testing.assert_close(fast(y, u), expected, rtol=1e-9, atol=1e-9)
    if not per_filter:
        reference = MultiChannelStep(x, op, 1.8)
        reference.set_rho(rho)
        torch.testing.assert_close(fast(y, u), reference(y, u), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    "params",
    [
        {"residual_ratio": 1.0},
        {"residual_ratio": 5.0},
        {"rho_per_filter": False},
        {"positive": True},
    ],
)
def test_rho_options_change_the_path_not_the_solution(params: dict[str, Any]) -> None:
    d, s = _problem()
    op, x = _op(d), _image(s)
    positive = {"positive": True} if params.get("positive") else {}
    f_default = float(Lasso(LAM).objective(x, op, _admm(x, op, **positive))[0])
    f_ratio = float(Lasso(LAM).objective(x, op, _admm(x, op, **params))[0])
    assert abs(f_ratio - f_default) <= 1e-6 * f_default
    with pytest.raises(ConfigError, match="residual_ratio"):
        build("pursuit", "csc_admm", lam=LAM, residual_ratio=0.0)


@pytest.mark.parametrize("side", [16, 130])  # below and above the per-slice loop's size
@pytest.mark.parametrize("positive", [False, True])
def test_clip_equals_the_broadcast_clamp(side: int, positive: bool) -> None:
    from sparseland.plugins.convolutional.csc_admm import _clip

    gen = torch.Generator().manual_seed(side)
    v = torch.randn(3, 4, side, side, generator=gen)
    thresholds = torch.rand(3, 4, 1, 1, generator=gen)
    out = torch.empty_like(v)
    _clip(v, thresholds, positive, out)
    upper = torch.minimum(v, thresholds)
    assert torch.equal(out, upper if positive else torch.maximum(upper, -thresholds))
