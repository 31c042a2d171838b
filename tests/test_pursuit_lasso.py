"""Lasso pursuits (ista, fista, cod, active_set, admm) against scikit-learn and optimality."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso

from sparseland import build
from sparseland.operators import MatrixOperator

M, K, N, LAM = 12, 24, 6, 0.15
SOLVERS = {
    "ista": {"max_iter": 20000, "tol": 1e-11, "check_every": 50},
    "fista": {"max_iter": 20000, "tol": 1e-11, "check_every": 50, "restart": True},
    "cod": {"max_iter": 20000, "tol": 1e-11, "check_every": 50},
    "active_set": {"tol": 1e-12},
    "admm": {"max_iter": 20000, "tol": 1e-12, "check_every": 50},
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def problem(dtype: torch.dtype = torch.float64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(M, K, generator=gen, dtype=torch.float64)
    d /= d.norm(dim=0)
    x = torch.randn(N, M, generator=gen, dtype=torch.float64)
    return x.to(dtype), d.to(dtype)


def objective(x: np.ndarray, d: np.ndarray, h: np.ndarray, lam: float) -> np.ndarray:
    return 0.5 * ((x - h @ d.T) ** 2).sum(1) + lam * np.abs(h).sum(1)


def sklearn_lasso(x: np.ndarray, d: np.ndarray, lam: float, positive: bool) -> np.ndarray:
    # scikit-learn minimises (1/(2m))‖x − D h‖² + α‖h‖₁, so α = λ/m gives the same minimiser.
    model = Lasso(
        alpha=lam / x.shape[1], fit_intercept=False, tol=1e-14, max_iter=200000, positive=positive
    )
    return np.stack([model.fit(d, xi).coef_.copy() for xi in x])


def independent_gap(
    x: np.ndarray, d: np.ndarray, h: np.ndarray, lam: float, positive: bool
) -> np.ndarray:
    """Duality gap recomputed in numpy: dual point ν = r·min(1, λ/‖Dᵀr‖_∞)."""
    r = x - h @ d.T
    c = r @ d
    worst = c.max(1) if positive else np.abs(c).max(1)
    nu = r * np.minimum(1.0, lam / worst)[:, None]
    dual = 0.5 * (x * x).sum(1) - 0.5 * ((x - nu) ** 2).sum(1)
    return objective(x, d, h, lam) - dual


@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("name", list(SOLVERS))
def test_matches_sklearn_and_optimality(name: str, positive: bool) -> None:
    x, d = problem()
    pursuit = build("pursuit", name, lam=LAM, positive=positive, **SOLVERS[name])
    h = pursuit(x, d).numpy()
    xn, dn = x.numpy(), d.numpy()
    ref = sklearn_lasso(xn, dn, LAM, positive)
    p, p_ref = objective(xn, dn, h, LAM), objective(xn, dn, ref, LAM)
    assert np.all(np.abs(p - p_ref) <= 1e-6 * p_ref)
    # Subgradient (KKT) conditions: Dᵀ(x − D h) ∈ λ ∂‖h‖₁.
    corr = (xn - h @ dn.T) @ dn
    on = h != 0
    if positive:
        assert h.min() >= 0
        assert np.allclose(corr[on], LAM, atol=1e-6)
        assert np.all(corr[~on] <= LAM + 1e-6)
    else:
        assert np.allclose(corr[on], LAM * np.sign(h[on]), atol=1e-6)
        assert np.all(np.abs(corr[~on]) <= LAM + 1e-6)
    # The reported duality gap is the mean of the independently computed one.
    info = pursuit.info
    assert info is not None and info.iterations >= 1
    gap = independent_gap(xn, dn, h, LAM, positive).mean()
    assert info.duality_gap == pytest.approx(gap, abs=1e-12)
    assert info.duality_gap < 1e-8


@pytest.mark.parametrize("name", list(SOLVERS))
def test_float32(name: str) -> None:
    x, d = problem(torch.float32)
    params = dict(SOLVERS[name], tol=1e-6)
    h = build("pursuit", name, lam=LAM, **params)(x, d)
    assert h.dtype == torch.float32
    xn, dn = x.double().numpy(), d.double().numpy()
    ref = sklearn_lasso(xn, dn, LAM, False)
    p, p_ref = objective(xn, dn, h.double().numpy(), LAM), objective(xn, dn, ref, LAM)
    assert np.all(np.abs(p - p_ref) <= 1e-4 * p_ref)


def test_positive_soft_threshold_is_relu_with_bias() -> None:
    x, d = problem()
    h = build("pursuit", "threshold", lam=LAM, positive=True)(x, d)
    assert torch.equal(h, torch.relu(x @ d - LAM))


@pytest.mark.parametrize(("name", "restart"), [("ista", False), ("fista", False), ("fista", True)])
def test_written_once_numpy_equals_torch(name: str, restart: bool) -> None:
    """The proximal-gradient code runs unchanged on numpy arrays (array-API namespace)."""
    x, d = problem()
    params = {"lam": LAM, "max_iter": 200, "tol": 0.0}
    if restart:
        params["restart"] = True
    pursuit = build("pursuit", name, **params)
    h_torch = pursuit.solve(x, MatrixOperator(d), None)
    h_numpy = pursuit.solve(x.numpy(), MatrixOperator(d.numpy()), None)
    assert isinstance(h_numpy, np.ndarray)
    np.testing.assert_allclose(h_numpy, h_torch.numpy(), rtol=1e-10, atol=1e-12)


def test_fista_restart_needs_fewer_iterations() -> None:
    x, d = problem()
    plain = build("pursuit", "fista", lam=LAM, max_iter=20000, tol=1e-10, check_every=10)
    restarted = build(
        "pursuit", "fista", lam=LAM, max_iter=20000, tol=1e-10, check_every=10, restart=True
    )
    plain(x, d)
    restarted(x, d)
    assert plain.info is not None and restarted.info is not None
    assert restarted.info.iterations < plain.info.iterations


@pytest.mark.parametrize("positive", [False, True])
def test_admm_undercomplete_matches_sklearn(positive: bool) -> None:
    """m ≥ k takes the direct (DᵀD + ρI)⁻¹ branch instead of the matrix inversion lemma."""
    gen = torch.Generator().manual_seed(3)
    d = torch.randn(20, 8, generator=gen, dtype=torch.float64)
    d /= d.norm(dim=0)
    x = torch.randn(5, 20, generator=gen, dtype=torch.float64)
    pursuit = build("pursuit", "admm", lam=LAM, positive=positive, max_iter=20000, tol=1e-12)
    h = pursuit(x, d).numpy()
    xn, dn = x.numpy(), d.numpy()
    ref = sklearn_lasso(xn, dn, LAM, positive)
    p, p_ref = objective(xn, dn, h, LAM), objective(xn, dn, ref, LAM)
    assert np.all(np.abs(p - p_ref) <= 1e-8 * p_ref)


def test_admm_warm_start_from_the_solution_stops_at_once() -> None:
    x, d = problem()
    exact = build("pursuit", "admm", lam=LAM, max_iter=20000, tol=1e-12, check_every=50)
    h = exact(x, d)
    warm = build("pursuit", "admm", lam=LAM, max_iter=20000, tol=1e-6, check_every=1)
    warm(x, d, init=h)
    assert exact.info is not None and warm.info is not None
    assert warm.info.iterations < exact.info.iterations / 10


def test_admm_cpu_blocks_equal_one_batch() -> None:
    """Blocks of rows (for the cache) change nothing but the order of the arithmetic."""
    x, d = problem()
    params = {"lam": LAM, "max_iter": 60, "tol": 0.0}
    whole = build("pursuit", "admm", cpu_block=0, **params)(x, d)
    blocks = build("pursuit", "admm", cpu_block=4, **params)(x, d)
    torch.testing.assert_close(blocks, whole, rtol=1e-10, atol=1e-12)
