"""The convolutional dictionary: adjoint, Lipschitz bound, FFT = direct = sporco's convention."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from sparseland import build
from sparseland.errors import ShapeError
from sparseland.plugins.convolutional.conv_dictionary import ConvDictionary
from sparseland.problems import Lasso


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny convolutions: OpenMP threads only cost synchronisation on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _random(channels: int, boundary: str, method: str) -> tuple[ConvDictionary, torch.Tensor]:
    gen = torch.Generator().manual_seed(channels)
    filters = torch.randn(5, channels, 4, 3, generator=gen, dtype=torch.float64)
    x = torch.randn(3, channels, 11, 9, generator=gen, dtype=torch.float64)
    return ConvDictionary(filters, boundary, method), x


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("boundary", ["circular", "full"])
@pytest.mark.parametrize("method", ["fft", "direct"])
def test_adjoint_dot_product(channels: int, boundary: str, method: str) -> None:
    op, x = _random(channels, boundary, method)
    z = torch.randn(op.code_shape(x), dtype=torch.float64)
    lhs = float((op.forward(z) * x).sum())
    rhs = float((z * op.adjoint(x)).sum())
    assert op.forward(z).shape == x.shape
    assert abs(lhs - rhs) <= 1e-12 * (abs(lhs) + 1.0)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("boundary", ["circular", "full"])
def test_fft_equals_direct(channels: int, boundary: str) -> None:
    fft, x = _random(channels, boundary, "fft")
    direct = ConvDictionary(fft.filters, boundary, "direct")
    z = torch.randn(fft.code_shape(x), dtype=torch.float64)
    torch.testing.assert_close(fft.forward(z), direct.forward(z), rtol=0, atol=1e-12)
    torch.testing.assert_close(fft.adjoint(x), direct.adjoint(x), rtol=0, atol=1e-12)


def test_full_boundary_is_the_valid_part_of_the_linear_convolution() -> None:
    """Reference: scipy's 2-D linear convolution, mode='valid' (per channel, summed)."""
    from scipy.signal import convolve2d

    op, x = _random(1, "full", "direct")
    z = torch.randn(op.code_shape(x), dtype=torch.float64)
    d, zz = op.filters.numpy(), z.numpy()
    ref = sum(convolve2d(zz[0, k], d[k, 0], mode="valid") for k in range(op.n_filters))
    np.testing.assert_allclose(op.forward(z)[0, 0].numpy(), ref, atol=1e-12)


def test_circular_matches_numpy_fft_convolution() -> None:
    """sporco's ConvBPDN convention: filters zero-padded at the origin, products of FFTs."""
    op, x = _random(1, "circular", "direct")
    z = torch.randn(op.code_shape(x), dtype=torch.float64)
    d_hat = np.fft.fft2(op.filters[:, 0].numpy(), s=x.shape[-2:])
    ref = np.real(np.fft.ifft2((d_hat * np.fft.fft2(z[0].numpy())).sum(axis=0)))
    np.testing.assert_allclose(op.forward(z)[0, 0].numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("boundary", ["circular", "full"])
def test_lipschitz_bounds_operator_norm(channels: int, boundary: str) -> None:
    op, x = _random(channels, boundary, "fft")
    bound = op.lipschitz(x)
    v = torch.randn(op.code_shape(x[:1]), dtype=torch.float64)
    for _ in range(300):  # power iteration from below: ‖D‖² ≥ estimate
        v = op.adjoint(op.forward(v))
        estimate = float(v.norm())
        v = v / estimate
    assert estimate <= bound
    if boundary == "circular":  # exact on the code grid
        assert estimate >= bound * (1 - 1e-5)  # power iteration converges from below
    for _ in range(5):  # and ‖Dz‖² ≤ L‖z‖² for random codes
        z = torch.randn_like(v)
        assert float(op.forward(z).pow(2).sum()) <= bound * float(z.pow(2).sum())


def test_shape_error_names_the_expected_shape() -> None:
    op, _ = _random(1, "circular", "fft")
    with pytest.raises(ShapeError, match=r"expected \(n, 1, H, W\)"):
        op.code_shape(torch.zeros(2, 3, 8, 8))


@pytest.mark.parametrize("name", ["ista", "fista"])
def test_existing_pursuits_run_unchanged_on_the_operator(name: str) -> None:
    """ista/fista need only forward/adjoint/code_shape/lipschitz: they solve the CSC problem
    (certified by the duality gap) and ISTA's objective decreases monotonically."""
    op, x = _random(1, "full", "fft")
    op = ConvDictionary(op.filters / op.filters.flatten(1).norm(dim=1)[:, None, None, None], "full")
    lam = 0.5
    values = []
    for n_iter in (5, 20, 80):
        pursuit = build("pursuit", name, lam=lam, max_iter=n_iter, tol=0.0)
        codes = pursuit(x, op)
        values.append(float(Lasso(lam).objective(x, op, codes).sum()))
    assert values[0] > values[1] > values[2]
    pursuit = build("pursuit", name, lam=lam, max_iter=1000, tol=1e-10)
    codes = pursuit(x, op)
    gap = Lasso(lam).duality_gap(x, op, codes)
    objective = Lasso(lam).objective(x, op, codes)
    assert float((gap / objective).max()) < {"ista": 1e-2, "fista": 1e-4}[name]
