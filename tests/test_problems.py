"""Problems (framework/problems.py) and the FISTA momentum rule against closed forms and
scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso as SkLasso

from sparseland.errors import ConfigError
from sparseland.momentum import momentum_weights, next_momentum
from sparseland.operators import MatrixOperator
from sparseland.problems import (
    L0,
    L0Error,
    L0Penalty,
    Lasso,
    MultiLayerLasso,
    soft_threshold,
    soft_threshold_,
)


def test_soft_threshold_closed_form() -> None:
    v = torch.tensor([[-3.0, -0.5, 0.0, 0.4, 2.0]])
    assert torch.equal(soft_threshold(v, 1.0), torch.tensor([[-2.0, 0.0, 0.0, 0.0, 1.0]]))
    assert torch.equal(soft_threshold(v, 1.0, True), torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0]]))
    # one threshold per atom broadcasts; numpy in, numpy out
    tau = np.array([0.0, 1.0, 0.0, 0.5, 3.0])
    out = soft_threshold(v.numpy(), tau)
    np.testing.assert_allclose(out, [[-3.0, 0.0, 0.0, 0.0, 0.0]])
    work = torch.empty_like(v)
    assert torch.equal(soft_threshold_(v.clone(), 1.0, False, work), soft_threshold(v, 1.0))
    assert torch.equal(soft_threshold_(v.clone(), 1.0, True, work), soft_threshold(v, 1.0, True))


def test_soft_threshold_is_the_l1_prox() -> None:
    # S_τ(v) = argmin_h ½(h − v)² + τ|h|: compare with a fine grid search
    grid = torch.linspace(-4, 4, 80001, dtype=torch.float64)
    for v in (-2.5, -0.3, 0.7, 3.1):
        brute = grid[(0.5 * (grid - v) ** 2 + 0.8 * grid.abs()).argmin()]
        assert float(Lasso(0.8).prox(torch.tensor([[v]], dtype=torch.float64))) == pytest.approx(
            float(brute), abs=1e-4
        )


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(10, 20, generator=gen, dtype=torch.float64)
    d /= d.norm(dim=0)
    return torch.randn(5, 10, generator=gen, dtype=torch.float64), d


def test_lasso_objective_closed_form() -> None:
    d = torch.eye(2, dtype=torch.float64)
    x = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    h = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    # ½‖(0, 3)‖² + 0.5·(1 + 1) = 4.5 + 1
    assert float(Lasso(0.5).objective(x, MatrixOperator(d), h)) == pytest.approx(5.5)


@pytest.mark.parametrize("positive", [False, True])
def test_duality_gap_vanishes_at_the_scikit_learn_solution(positive: bool) -> None:
    x, d = _data()
    lam = 0.2
    m = x.shape[1]
    # scikit-learn minimises (1/(2m))‖x − D h‖² + α‖h‖₁: α = λ/m has the same minimiser
    sk = SkLasso(alpha=lam / m, fit_intercept=False, tol=1e-14, max_iter=200000, positive=positive)
    h = torch.from_numpy(np.stack([sk.fit(d.numpy(), xi.numpy()).coef_.copy() for xi in x]))
    problem, op = Lasso(lam, positive), MatrixOperator(d)
    gap = problem.duality_gap(x, op, h)
    assert float(gap.abs().max()) < 1e-9
    # away from the solution the gap is positive, and it bounds the suboptimality
    worse = h + 0.05
    gap_worse = problem.duality_gap(x, op, worse)
    excess = problem.objective(x, op, worse) - problem.objective(x, op, h)
    assert bool((gap_worse >= excess - 1e-12).all()) and bool((excess > 0).all())


def test_zero_is_optimal_matches_kkt() -> None:
    c = torch.tensor([[0.1, -0.3], [0.1, 0.05]])
    assert Lasso(0.2).zero_is_optimal(c).tolist() == [False, True]
    assert Lasso(0.2, positive=True).zero_is_optimal(c).tolist() == [True, True]


def test_l0_problems() -> None:
    v = torch.tensor([[0.5, -3.0, 1.0, 2.0]])
    assert torch.equal(L0(2).prox(v), torch.tensor([[0.0, -3.0, 0.0, 2.0]]))
    assert torch.equal(L0(2, positive=True).prox(v), torch.tensor([[0.0, 0.0, 1.0, 2.0]]))
    # the hard threshold at λ is the prox of ½λ²‖h‖₀: keep v where ½v² > ½λ²
    assert torch.equal(L0Penalty(1.5).prox(v), torch.tensor([[0.0, -3.0, 0.0, 2.0]]))
    x, d = torch.tensor([[3.0, 4.0]]), torch.eye(2)
    h = torch.tensor([[3.0, 0.0]])
    op = MatrixOperator(d)
    assert float(L0(1).objective(x, op, h)) == pytest.approx(8.0)
    assert float(L0Penalty(2.0).objective(x, op, h)) == pytest.approx(8.0 + 2.0)
    # eps is a residual norm: ‖(0, 4)‖ = 4
    assert float(L0Error(4.0).objective(x, op, h)) == 1.0
    assert L0Error(4.0).feasible(x, op, h).tolist() == [True]
    assert L0Error(3.9).feasible(x, op, h).tolist() == [False]
    with pytest.raises(ConfigError, match="eps"):
        L0Error(-1.0)
    with pytest.raises(ConfigError, match="lam"):
        Lasso(-0.1)


class _Chain:
    """Two matrix layers D_(1,2) = D₁D₂."""

    def __init__(self, d1: torch.Tensor, d2: torch.Tensor) -> None:
        self.n_layers, self.d1, self.d2 = 2, d1, d2

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return codes @ (self.d1 @ self.d2).T

    def layer_forward(self, i: int, codes: torch.Tensor) -> torch.Tensor:
        return codes @ (self.d1 if i == 1 else self.d2).T


def test_multilayer_lasso_objective_closed_form() -> None:
    gen = torch.Generator().manual_seed(1)
    d1 = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    d2 = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    x = torch.randn(3, 6, generator=gen, dtype=torch.float64)
    g2 = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    g1 = g2 @ d2.T
    expected = 0.5 * ((x - g1 @ d1.T) ** 2).sum(1) + 0.3 * g1.abs().sum(1) + 0.1 * g2.abs().sum(1)
    got = MultiLayerLasso((0.3, 0.1)).objective(x, _Chain(d1, d2), g2)
    torch.testing.assert_close(got, expected)
    with pytest.raises(ConfigError, match="3 values for 2 layers"):
        MultiLayerLasso((0.1, 0.2, 0.3)).objective(x, _Chain(d1, d2), g2)


def test_momentum_rule() -> None:
    t2, beta1 = next_momentum(1.0)
    assert t2 == pytest.approx((1 + math.sqrt(5)) / 2) and beta1 == 0.0
    t3, beta2 = next_momentum(t2)
    assert t3 == pytest.approx((1 + math.sqrt(1 + 4 * t2 * t2)) / 2)
    assert beta2 == pytest.approx((t2 - 1) / t3)
    assert momentum_weights(2) == [beta1, pytest.approx(beta2)]
    # one t per signal (adaptive restart)
    t, beta = next_momentum(torch.tensor([1.0, t2]))
    assert torch.allclose(t, torch.tensor([t2, t3])) and float(beta[0]) == 0.0
