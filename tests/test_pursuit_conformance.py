"""Conformance of every Lasso pursuit and of OMP against scikit-learn, property-based.

Hypothesis draws small random problems across the regimes where bugs lived: from 1 atom to
more atoms than the signal dimension (and OMP's k beyond it), λ from 0 to above λ_max,
non-normalised and duplicated atoms, zero signals, zero atoms, float32/float64, non-contiguous
inputs and empty batches. scikit-learn is the reference: ``Lasso``/``lasso_path`` (coordinate
descent run to 1e-12) for the Lasso, ``orthogonal_mp_gram`` and ``sparse_encode`` for OMP.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.decomposition import sparse_encode
from sklearn.linear_model import Lasso, lasso_path, orthogonal_mp_gram

from sparseland import build

# Each pursuit run to (near) exactness; the budgets are far above what these sizes need.
LASSO_PURSUITS: dict[str, dict[str, object]] = {
    "ista": {"max_iter": 20_000, "tol": 1e-12},
    "fista": {"max_iter": 5_000, "tol": 1e-12, "restart": True},
    "cod": {"max_iter": 20_000, "tol": 1e-12},
    "admm": {"max_iter": 5_000, "tol": 1e-11},
}
SETTINGS = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's and ours: convergence is checked here
        yield
    torch.set_num_threads(threads)


@dataclass
class Problem:
    x: np.ndarray  # (n, m) float64, the exact values given to both sides
    d: np.ndarray  # (m, k) float64
    contiguous: bool

    def tensors(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        x, d = torch.tensor(self.x, dtype=dtype), torch.tensor(self.d, dtype=dtype)
        if not self.contiguous:  # the same values as strided views
            x = x.T.contiguous().T
            wide = torch.zeros(d.shape[0], 2 * d.shape[1], dtype=dtype)
            wide[:, ::2] = d
            d = wide[:, ::2]
        return x, d


@st.composite
def problems(draw: st.DrawFn, max_atoms: int = 12) -> Problem:
    m = draw(st.integers(2, 8))
    k = draw(st.integers(1, max_atoms))
    n = draw(st.integers(0, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    d = rng.standard_normal((m, k))
    d /= np.linalg.norm(d, axis=0)
    if draw(st.booleans()):  # non-normalised atoms
        d *= rng.uniform(0.3, 3.0, size=k)
    if k >= 2 and draw(st.booleans()):  # a duplicated atom
        d[:, k - 1] = d[:, 0]
    if k >= 3 and draw(st.booleans()):  # an all-zero atom
        d[:, 1] = 0.0
    x = rng.standard_normal((n, m))
    if n >= 2 and draw(st.booleans()):  # a zero signal
        x[1] = 0.0
    return Problem(x=x, d=d, contiguous=draw(st.booleans()))


def objective(x: np.ndarray, d: np.ndarray, h: np.ndarray, lam: float) -> np.ndarray:
    return 0.5 * ((x - h @ d.T) ** 2).sum(1) + lam * np.abs(h).sum(1)


def sklearn_lasso(x: np.ndarray, d: np.ndarray, lam: float, positive: bool) -> np.ndarray:
    """Codes minimising ½‖x − D h‖² + λ‖h‖₁ (scikit-learn's α = λ/m, its loss is /(2m))."""
    if not len(x):
        return np.zeros((0, d.shape[1]))
    if lam == 0 and not positive:  # least squares: the minimum-norm solution
        return np.linalg.lstsq(d, x.T, rcond=None)[0].T
    model = Lasso(
        alpha=lam / d.shape[0],
        fit_intercept=False,
        positive=positive,
        tol=1e-13,
        max_iter=1_000_000,
    )
    return np.stack([model.fit(d, row).coef_.copy() for row in x]).reshape(len(x), d.shape[1])


def assert_lasso_optimal(
    x: np.ndarray, d: np.ndarray, h: np.ndarray, ref: np.ndarray, lam: float, rtol: float
) -> None:
    p, p_ref = objective(x, d, h, lam), objective(x, d, ref, lam)
    scale = 0.5 * (x * x).sum(1)  # P(0): every objective is measured against it
    assert np.all(p - p_ref <= rtol * np.maximum(scale, 1e-300)), (p - p_ref, scale)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", list(LASSO_PURSUITS))
@SETTINGS
@given(
    problem=problems(),
    lam_fraction=st.sampled_from([0.0, 0.02, 0.1, 0.5, 0.99, 1.0, 1.5]),
    positive=st.booleans(),
)
def test_lasso_matches_sklearn(
    name: str, dtype: torch.dtype, problem: Problem, lam_fraction: float, positive: bool
) -> None:
    x, d = problem.tensors(dtype)
    # the values both sides see: the inputs rounded to the pursuit's precision
    xr, dr = x.double().numpy(), d.double().numpy()
    correlation = xr @ dr
    lam_max = float(np.abs(correlation).max()) if correlation.size else 1.0
    lam = lam_fraction * lam_max
    if positive and lam == 0:
        lam = 0.02 * lam_max
    params = dict(LASSO_PURSUITS[name])
    if dtype == torch.float32:  # a tolerance float32 can reach
        params["tol"] = 1e-6
    codes = build("pursuit", name, lam=lam, positive=positive, **params)(x, d)
    assert codes.shape == (x.shape[0], d.shape[1]) and codes.dtype == dtype
    h = codes.double().numpy()
    assert np.isfinite(h).all()
    if positive:
        assert (h >= 0).all()
    ref = sklearn_lasso(xr, dr, lam, positive)
    rtol = 1e-7 if dtype == torch.float64 else 1e-3
    assert_lasso_optimal(xr, dr, h, ref, lam, rtol)
    # zero signals, zero atoms and λ ≥ λ_max give exactly zero codes
    assert (h[np.abs(xr).sum(1) == 0] == 0).all()
    assert (h[:, np.abs(dr).sum(0) == 0] == 0).all()
    if lam_fraction > 1.0:
        assert (h == 0).all()
    elif lam_fraction == 1.0:  # at λ_max exactly, zero up to the rounding of Dᵀx
        assert np.abs(h).max(initial=0.0) <= (1e-12 if dtype == torch.float64 else 1e-5)


@pytest.mark.parametrize("name", list(LASSO_PURSUITS))
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), atoms=st.integers(1, 12))
def test_lasso_path_matches_sklearn(name: str, seed: int, atoms: int) -> None:
    """Along scikit-learn's own λ grid for one signal, from λ_max down to 1e-2·λ_max."""
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((6, atoms))
    x = rng.standard_normal(6)
    alphas, coefs, _ = lasso_path(d, x, n_alphas=6, eps=1e-2, tol=1e-13, max_iter=1_000_000)
    params = dict(LASSO_PURSUITS[name])
    for alpha, ref in zip(alphas, coefs.T, strict=True):
        lam = float(alpha) * d.shape[0]
        pursuit = build("pursuit", name, lam=lam, **params)
        h = pursuit(torch.tensor(x[None]), torch.tensor(d)).numpy()
        assert_lasso_optimal(x[None], d, h, ref[None], lam, 1e-7)


def omp_reference(x: np.ndarray, d: np.ndarray, k: int) -> np.ndarray:
    gram, xy = d.T @ d, (x @ d).T
    return np.asarray(orthogonal_mp_gram(gram, xy, n_nonzero_coefs=k)).T.reshape(x.shape[0], -1)


@st.composite
def omp_problems(draw: st.DrawFn) -> tuple[Problem, int]:
    problem = draw(problems(max_atoms=16))
    k = draw(st.integers(1, problem.d.shape[1]))  # up to every atom, beyond the dimension
    return problem, k


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@SETTINGS
@given(case=omp_problems())
def test_omp_matches_sklearn(dtype: torch.dtype, case: tuple[Problem, int]) -> None:
    problem, k = case
    x, d = problem.tensors(dtype)
    codes = build("pursuit", "omp", k=k)(x, d)
    assert codes.shape == (x.shape[0], d.shape[1]) and codes.dtype == dtype
    h = codes.double().numpy()
    xr, dr = x.double().numpy(), d.double().numpy()
    assert np.isfinite(h).all()
    support = (h != 0).sum(1)
    rank = np.linalg.matrix_rank(dr) if dr.size else 0
    assert (support <= min(k, rank)).all()  # never more atoms than k or the rank
    assert (h[:, np.abs(dr).sum(0) == 0] == 0).all()  # zero atoms are never chosen
    residual = xr - h @ dr.T
    # the codes are the least-squares fit on their support: residual ⟂ chosen atoms
    eps = 1e-9 if dtype == torch.float64 else 1e-3
    for r, code in zip(residual, h, strict=True):
        chosen = dr[:, code != 0]
        scale = np.linalg.norm(chosen, axis=0) * max(np.linalg.norm(r), 1.0)
        assert np.all(np.abs(chosen.T @ r) <= eps * scale * 10)
    if dtype != torch.float64 or not len(xr):
        return
    ref = omp_reference(xr, dr, k)
    ref_residual = np.linalg.norm(xr - ref @ dr.T, axis=1)
    norms = np.maximum(np.linalg.norm(xr, axis=1), 1.0)
    np.testing.assert_allclose(
        np.linalg.norm(residual, axis=1), ref_residual, atol=1e-8 * norms.max()
    )
    duplicated = d.shape[1] >= 2 and bool(np.all(dr[:, -1] == dr[:, 0]))
    if not duplicated:  # ties between copies aside, the same atoms and coefficients
        np.testing.assert_allclose(h, ref, atol=1e-8 * norms.max())
        codes_se = sparse_encode(xr, dr.T, algorithm="omp", n_nonzero_coefs=min(k, rank) or 1)
        if rank and (support == np.minimum(k, rank)).all():
            np.testing.assert_allclose(h, codes_se, atol=1e-8 * norms.max())


@pytest.mark.parametrize("name", [*LASSO_PURSUITS, "omp"])
def test_empty_batch(name: str) -> None:
    d = torch.randn(5, 7, dtype=torch.float64)
    params = {"k": 3} if name == "omp" else {}
    codes = build("pursuit", name, **params)(torch.empty(0, 5, dtype=torch.float64), d)
    assert codes.shape == (0, 7)
