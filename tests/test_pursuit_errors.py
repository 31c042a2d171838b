"""Bad input to a pursuit gets a clear error; the CuPy backend runs or says why it cannot."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from sparseland import build
from sparseland.errors import BackendUnavailableError, ConfigError, NonFiniteError, ShapeError

NAMES = ["ista", "fista", "cod", "active_set", "admm", "omp", "threshold"]


def data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    d = torch.randn(16, 32, generator=gen)
    return torch.randn(5, 16, generator=gen), d / d.norm(dim=0)


@pytest.mark.parametrize("name", NAMES)
def test_shape_mismatch(name: str) -> None:
    x, d = data()
    with pytest.raises(ShapeError, match="16"):
        build("pursuit", name)(x[:, :10], d)


@pytest.mark.parametrize("name", NAMES)
def test_nan_input(name: str) -> None:
    x, d = data()
    x[2, 3] = float("nan")
    with pytest.raises(NonFiniteError, match="NaN"):
        build("pursuit", name)(x, d)


@pytest.mark.parametrize("name", ["ista", "fista", "cod", "active_set", "admm", "threshold"])
def test_negative_lambda(name: str) -> None:
    with pytest.raises(ConfigError, match="lam"):
        build("pursuit", name, lam=-0.1)


@pytest.mark.parametrize(
    ("name", "params", "key"),
    [
        ("omp", {"k": 0}, "k"),
        ("omp", {"k": None, "eps": None}, "k"),
        ("omp", {"eps": -1.0}, "eps"),
        ("threshold", {"mode": "medium"}, "mode"),
        ("threshold", {"mode": "soft", "k": 3}, "k"),
        ("active_set", {"passes": 0}, "passes"),
        ("admm", {"rho": 0.0}, "rho"),
        ("admm", {"relaxation": 2.0}, "relaxation"),
    ],
)
def test_bad_config(name: str, params: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        build("pursuit", name, **params)


def _cuda_cupy() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    import cupy

    try:
        return bool(cupy.cuda.runtime.getDeviceCount() > 0)
    except Exception:
        return False


@pytest.mark.skipif(_cuda_cupy(), reason="CuPy with a GPU is present")
def test_cupy_backend_without_cupy_or_gpu_is_clear() -> None:
    x, d = data()
    with pytest.raises(BackendUnavailableError, match="backend=torch"):
        build("pursuit", "fista", backend="cupy")(x, d)


@pytest.mark.parametrize("name", NAMES)
def test_cupy_backend_matches_torch(name: str) -> None:
    pytest.importorskip("cupy")
    if not _cuda_cupy():
        pytest.skip("no CUDA device for CuPy")
    x, d = data()
    x, d = x.double().cuda(), d.double().cuda()
    h_torch = build("pursuit", name)(x, d)
    h_cupy = build("pursuit", name, backend="cupy")(x, d)
    assert h_cupy.is_cuda
    torch.testing.assert_close(h_cupy, h_torch, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_cuda_tensors(name: str) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x, d = data()
    h_cpu = build("pursuit", name)(x.double(), d.double())
    h_gpu = build("pursuit", name)(x.double().cuda(), d.double().cuda())
    torch.testing.assert_close(h_gpu.cpu(), h_cpu, rtol=1e-6, atol=1e-8)
