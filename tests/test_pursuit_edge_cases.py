"""Every pursuit at the edges of its input: the shared input policy of ``Pursuit.__call__``,
OMP at rounding level, convergence warnings and zero codes (issue 16, part 1)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso, orthogonal_mp_gram

from sparseland import build
from sparseland.errors import NonFiniteError, ShapeError
from sparseland.interfaces.pursuit import ConvergenceWarning

NAMES = ["ista", "fista", "cod", "active_set", "admm", "omp", "threshold"]
# the pursuits this file holds to the shared policy (active_set is exercised where it agrees)
LASSO = ["ista", "fista", "cod", "admm"]
ITERATIVE = {"ista": {}, "fista": {}, "cod": {}, "admm": {}}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def data(
    n: int = 6, m: int = 16, k: int = 32, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    d = torch.randn(m, k, generator=gen, dtype=torch.float64)
    x = torch.randn(n, m, generator=gen, dtype=torch.float64)
    return x.to(dtype), (d / d.norm(dim=0)).to(dtype)


def sklearn_lasso(x: np.ndarray, d: np.ndarray, lam: float) -> np.ndarray:
    # scikit-learn's Lasso minimises ‖y − Xw‖²/(2 n_samples) + α‖w‖₁: α = λ/m
    model = Lasso(alpha=lam / d.shape[0], fit_intercept=False, tol=1e-14, max_iter=100_000)
    return np.stack([model.fit(d, row).coef_.copy() for row in x])


def lasso_objective(x: np.ndarray, d: np.ndarray, h: np.ndarray, lam: float) -> np.ndarray:
    return 0.5 * ((x - h @ d.T) ** 2).sum(1) + lam * np.abs(h).sum(1)


# --- the dictionary is checked as well as the signals -------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("name", NAMES)
def test_non_finite_dictionary_is_refused(name: str, bad: float) -> None:
    x, d = data()
    d[3, 5] = bad
    with pytest.raises(NonFiniteError, match="dictionary contains NaN or Inf"):
        build("pursuit", name)(x, d)


@pytest.mark.parametrize("name", NAMES)
def test_integer_dictionary_is_refused(name: str) -> None:
    x, d = data()
    with pytest.raises(ShapeError, match="dictionary must be floating point"):
        build("pursuit", name)(x, (d * 10).long())


# --- empty batches ------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch_gives_empty_codes(name: str) -> None:
    x, d = data()
    params = {"k": 3, "mode": "hard"} if name == "threshold" else {}
    pursuit = build("pursuit", name, **params)
    codes = pursuit(x[:0], d)
    assert codes.shape == (0, d.shape[1]) and codes.dtype == x.dtype
    assert pursuit.info is not None and pursuit.info.iterations == 0


# --- one dtype policy ---------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_dictionary_is_cast_to_the_signals_dtype(name: str) -> None:
    x, d = data()
    mixed = build("pursuit", name)(x.float(), d)  # float64 dictionary, float32 signals
    same = build("pursuit", name)(x.float(), d.float())
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, same)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision_is_solved_in_float32(name: str, dtype: torch.dtype) -> None:
    x, d = data()
    codes = build("pursuit", name)(x.to(dtype), d.to(dtype))
    assert codes.dtype == dtype
    reference = build("pursuit", name)(x.to(dtype).float(), d.to(dtype).float())
    torch.testing.assert_close(codes, reference.to(dtype))


# --- numpy in, numpy out ------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_numpy_arrays_give_numpy_codes(name: str) -> None:
    x, d = data()
    codes = build("pursuit", name)(x.numpy(), d.numpy().copy(order="F"))
    assert isinstance(codes, np.ndarray) and codes.dtype == np.float64
    np.testing.assert_allclose(codes, build("pursuit", name)(x, d).numpy(), atol=1e-12)


def test_other_containers_get_a_one_line_message() -> None:
    x, d = data()
    with pytest.raises(ShapeError, match="torch tensor or a numpy array, got list"):
        build("pursuit", "fista")(x.tolist(), d)


# --- zero atoms ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_zero_atom_gets_a_zero_coefficient(name: str) -> None:
    x, d = data()
    d[:, 7] = 0.0
    codes = build("pursuit", name)(x, d)
    assert bool(torch.isfinite(codes).all())
    assert bool((codes[:, 7] == 0).all())


@pytest.mark.parametrize("name", LASSO)
def test_zero_atom_leaves_the_lasso_solution_unchanged(name: str) -> None:
    x, d = data()
    d[:, 7] = 0.0
    params = {"max_iter": 100_000, "tol": 1e-10}
    codes = build("pursuit", name, lam=0.1, **params)(x, d).numpy()
    ref = sklearn_lasso(x.numpy(), d.numpy(), 0.1)
    p, p_ref = (
        lasso_objective(x.numpy(), d.numpy(), codes, 0.1),
        lasso_objective(x.numpy(), d.numpy(), ref, 0.1),
    )
    np.testing.assert_allclose(p, p_ref, rtol=1e-7)


def test_cod_with_a_zero_atom_has_no_nan_inside_solve() -> None:
    """cod itself (below the shared policy) divides by G_jj: a zero atom must not give 0/0."""
    from sparseland.operators import MatrixOperator

    x, d = data()
    d[:, 7] = 0.0
    pursuit = build("pursuit", "cod", lam=0.1)
    codes = pursuit.solve(x, MatrixOperator(d), None)
    assert bool(torch.isfinite(codes).all()) and bool((codes[:, 7] == 0).all())


# --- OMP at rounding level ----------------------------------------------------------------


@pytest.mark.parametrize("k", [16, 20, 32])
def test_omp_with_k_at_or_above_the_dimension_fits_exactly(k: int) -> None:
    x, d = data(n=20, m=16, k=32)
    codes = build("pursuit", "omp", k=k)(x, d)
    support = (codes != 0).sum(dim=1)
    assert int(support.max()) <= 16  # never more atoms than the rank of D
    torch.testing.assert_close(codes @ d.T, x, rtol=0, atol=1e-10)
    # the coefficients are the least-squares fit on the support: as large as the fit needs
    for row, code in zip(x, codes, strict=True):
        on = code != 0
        lstsq = torch.linalg.lstsq(d[:, on], row[:, None]).solution[:, 0]
        torch.testing.assert_close(code[on], lstsq, rtol=1e-8, atol=1e-10)


def test_omp_rank_deficient_dictionary_stops_at_the_rank() -> None:
    gen = torch.Generator().manual_seed(3)
    basis = torch.randn(16, 6, generator=gen, dtype=torch.float64)
    d = basis @ torch.randn(6, 24, generator=gen, dtype=torch.float64)  # rank 6
    d /= d.norm(dim=0)
    x = torch.randn(10, 6, generator=gen, dtype=torch.float64) @ basis.T
    codes = build("pursuit", "omp", k=16)(x, d)
    assert int((codes != 0).sum(dim=1).max()) <= 6
    torch.testing.assert_close(codes @ d.T, x, rtol=0, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_omp_duplicated_atom_gets_no_second_coefficient(dtype: torch.dtype) -> None:
    _, d = data(n=1, m=16, k=32)
    d[:, 31] = d[:, 4]
    scales = torch.linspace(-2.0, 3.0, 20, dtype=torch.float64)[:, None]
    x = (scales * d[:, 4] + 0.5 * d[:, 9]).to(dtype)  # two atoms fit exactly
    codes = build("pursuit", "omp", k=8)(x, d.to(dtype))
    assert (codes != 0).sum(dim=1).tolist() == [2] * 20  # no atom for the rounding residual
    assert not bool(((codes[:, 4] != 0) & (codes[:, 31] != 0)).any())
    dt = d.to(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scikit-learn: "stopped early"
        ref = orthogonal_mp_gram((dt.T @ dt).numpy(), (x @ dt).numpy().T, n_nonzero_coefs=8).T
    assert (ref != 0).sum(axis=1).tolist() == [2] * 20  # scikit-learn agrees


def test_omp_on_an_exactly_representable_signal_stops_at_its_support() -> None:
    x, d = data(n=1, m=16, k=32)
    x = (2.0 * d[:, 3] - 0.5 * d[:, 9])[None]
    codes = build("pursuit", "omp", k=10)(x, d)
    assert set(torch.nonzero(codes[0]).reshape(-1).tolist()) == {3, 9}


# --- convergence warnings and zero codes --------------------------------------------------


@pytest.mark.parametrize("name", LASSO)
def test_stopping_at_max_iter_warns_once_with_the_fraction(name: str) -> None:
    x, d = data(n=8)
    with pytest.warns(ConvergenceWarning, match=rf"{name}: \d+ of 8 signals \(\d+\.\d%\)") as got:
        build("pursuit", name, lam=0.01, max_iter=2, tol=1e-12, check_every=1)(x, d)
    assert len([w for w in got if issubclass(w.category, ConvergenceWarning)]) == 1


@pytest.mark.parametrize("name", LASSO)
def test_converged_or_fixed_budget_runs_are_silent(name: str) -> None:
    x, d = data(n=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        build("pursuit", name, lam=0.1, max_iter=100_000, tol=1e-6)(x, d)
        build("pursuit", name, lam=0.1, max_iter=5, tol=0.0)(x, d)  # tol=0: a fixed budget


@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("name", LASSO)
def test_zero_codes_stop_at_once(name: str, positive: bool) -> None:
    x, d = data(n=8)
    lam_max = float((x @ d).abs().max())
    pursuit = build("pursuit", name, lam=1.01 * lam_max, positive=positive, max_iter=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        codes = pursuit(x, d)
    assert bool((codes == 0).all())
    assert pursuit.info is not None and pursuit.info.iterations <= 1


@pytest.mark.parametrize("name", ["admm", "cod", "fista"])
def test_zero_signals_among_others_do_not_block_convergence(name: str) -> None:
    x, d = data(n=8)
    x[2] = 0.0
    pursuit = build("pursuit", name, lam=0.1, max_iter=100_000, tol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        codes = pursuit(x, d)
    assert bool((codes[2] == 0).all())
    assert pursuit.info is not None and pursuit.info.iterations < 100_000


@pytest.mark.parametrize("name", LASSO)
def test_atoms_of_unequal_norms_converge(name: str) -> None:
    """Norms from 0.1 to 10: the step 1/‖D‖² follows the largest atom, so without rescaling
    the small ones barely move and every pursuit stopped at max_iter."""
    gen = torch.Generator().manual_seed(0)
    d = torch.randn(32, 16, generator=gen, dtype=torch.float64)
    d = d / d.norm(dim=0) * torch.logspace(-1, 1, 16, dtype=torch.float64)
    x = torch.randn(8, 32, generator=gen, dtype=torch.float64)
    pursuit = build("pursuit", name, lam=0.1, tol=1e-6)  # default max_iter
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        codes = pursuit(x, d).numpy()
    ref = sklearn_lasso(x.numpy(), d.numpy(), 0.1)
    p, p_ref = (lasso_objective(x.numpy(), d.numpy(), h, 0.1) for h in (codes, ref))
    np.testing.assert_allclose(p, p_ref, rtol=1e-4)
