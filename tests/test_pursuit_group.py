"""Group pursuits (``somp``, ``group_lasso``) against independent references: scikit-learn's
OMP for one signal per group, a plain per-group SOMP written here with numpy's least squares,
and scikit-learn's MultiTaskLasso (the ℓ1,2 group Lasso) plus its optimality conditions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import MultiTaskLasso, orthogonal_mp

from sparseland.registry import build


def _problem(seed: int, m: int = 20, k: int = 40, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((m, k))
    d /= np.linalg.norm(d, axis=0)
    return rng.standard_normal((n, m)), d


def _reference_somp(x: np.ndarray, d: np.ndarray, k: int) -> np.ndarray:
    """One group (g × m), k atoms: pick argmax_j ‖Dᵀ R‖ over the residuals, refit by lstsq."""
    support: list[int] = []
    residual = x.copy()
    for _ in range(k):
        score = np.linalg.norm(residual @ d, axis=0)
        score[support] = -1.0
        support.append(int(score.argmax()))
        coef, *_ = np.linalg.lstsq(d[:, support], x.T, rcond=None)
        residual = x - (d[:, support] @ coef).T
    codes = np.zeros((x.shape[0], d.shape[1]))
    codes[:, support] = coef.T
    return codes


@pytest.mark.parametrize("seed", range(3))
def test_somp_with_one_signal_per_group_is_scikit_learn_omp(seed: int) -> None:
    x, d = _problem(seed)
    codes = build("pursuit", "somp", group_size=1, k=5)(x, d)
    expected = orthogonal_mp(d, x.T, n_nonzero_coefs=5).T
    np.testing.assert_allclose(codes, expected, atol=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_somp_groups_equal_a_per_group_solve(seed: int) -> None:
    x, d = _problem(seed)
    codes = build("pursuit", "somp", group_size=4, k=6)(x, d)
    for i in range(0, x.shape[0], 4):
        np.testing.assert_allclose(codes[i : i + 4], _reference_somp(x[i : i + 4], d, 6), atol=1e-9)
        assert (np.abs(codes[i : i + 4]).sum(axis=0) > 0).sum() == 6  # one shared support


def test_somp_error_target_stops_each_group_at_the_first_fit_within_eps() -> None:
    x, d = _problem(3)
    eps = 20.0
    codes = build("pursuit", "somp", group_size=4, k=None, eps=eps)(x, d)
    for i in range(0, x.shape[0], 4):
        group = x[i : i + 4]
        used = int((np.abs(codes[i : i + 4]).sum(axis=0) > 0).sum())
        assert np.sum((group - codes[i : i + 4] @ d.T) ** 2) <= eps + 1e-9
        if used > 0:  # one atom fewer does not reach eps
            shorter = _reference_somp(group, d, used - 1) if used > 1 else np.zeros_like(group @ d)
            assert np.sum((group - shorter @ d.T) ** 2) > eps


def test_somp_refuses_a_batch_that_does_not_split_into_groups() -> None:
    x, d = _problem(0, n=10)
    with pytest.raises(Exception, match="group_size=4"):
        build("pursuit", "somp", group_size=4)(x, d)


@pytest.mark.parametrize("seed", range(2))
def test_group_lasso_equals_scikit_learn_multitask_lasso(seed: int) -> None:
    x, d = _problem(seed)
    g, m = 6, d.shape[0]
    alpha = 0.05
    pursuit = build(
        "pursuit", "group_lasso", group_size=g, lam=alpha * m, max_iter=20000, tol=1e-12
    )
    codes = pursuit(torch.tensor(x), torch.tensor(d)).numpy()
    for i in range(0, x.shape[0], g):
        # MultiTaskLasso: min_W 1/(2 m) ‖Y − D W‖²_F + α Σ_j ‖W_j‖₂, Y = the group as columns
        ref = MultiTaskLasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=100000)
        ref.fit(d, x[i : i + g].T)
        np.testing.assert_allclose(codes[i : i + g], ref.coef_, atol=1e-6)


def test_group_lasso_meets_its_optimality_conditions() -> None:
    x, d = _problem(5)
    g, lam = 4, 1.0
    pursuit = build("pursuit", "group_lasso", group_size=g, lam=lam, max_iter=20000, tol=1e-13)
    codes = pursuit(torch.tensor(x), torch.tensor(d)).numpy()
    for i in range(0, x.shape[0], g):
        a = codes[i : i + g]
        grad = (x[i : i + g] - a @ d.T) @ d  # −∂/∂A of the data term, (g, K)
        norms = np.linalg.norm(a, axis=0)
        on = norms > 1e-12
        assert on.any() and not on.all()
        # active atoms: Dᵀ R_j = λ A_j / ‖A_j‖; inactive: ‖Dᵀ R_j‖ ≤ λ
        np.testing.assert_allclose(grad[:, on], lam * a[:, on] / norms[on], atol=1e-7)
        assert np.linalg.norm(grad[:, ~on], axis=0).max() <= lam + 1e-7
