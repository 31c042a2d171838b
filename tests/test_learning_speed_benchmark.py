"""The learning-speed benchmark's scoring: exact held-out objective and time to a target."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

learning_speed = pytest.importorskip("learning_speed")


def test_heldout_objective_matches_scikit_learn_lasso() -> None:
    """Mean ½‖x − Dh‖² + λ‖h‖₁ with exact codes equals scikit-learn's Lasso optimum
    (sklearn minimises (1/2m)‖x − Dh‖² + α‖h‖₁, so α = λ/m)."""
    from sklearn.linear_model import Lasso

    g = torch.Generator().manual_seed(0)
    m, k, n = 16, 32, 12
    D = torch.randn(m, k, generator=g, dtype=torch.float64)
    D /= D.norm(dim=0)
    T = torch.randn(n, m, generator=g, dtype=torch.float64)
    T /= T.norm(dim=1, keepdim=True)
    ours = learning_speed.heldout_objective(D, T)
    lam = learning_speed.LAM
    reference = []
    for x in T.numpy():
        fit = Lasso(alpha=lam / m, fit_intercept=False, tol=1e-12, max_iter=100_000)
        h = fit.fit(D.numpy(), x).coef_
        reference.append(0.5 * np.sum((x - D.numpy() @ h) ** 2) + lam * np.abs(h).sum())
    assert ours == pytest.approx(float(np.mean(reference)), rel=1e-7)


def test_first_reach_is_the_first_time_at_or_below_the_target() -> None:
    curve = [(1.0, 0.30), (2.0, 0.25), (3.0, 0.20), (4.0, 0.19)]
    assert learning_speed.first_reach(curve, 0.20) == 3.0
    assert learning_speed.first_reach(curve, 0.26) == 2.0
    assert learning_speed.first_reach(curve, 0.10) is None


def test_splits_hold_out_other_images() -> None:
    from sparseland.plugins.datasets.natural_images import BUNDLED

    assert len(learning_speed.SPLITS) >= 3
    for train, heldout in learning_speed.SPLITS.values():
        assert not set(train) & set(heldout)
        assert set(train) | set(heldout) <= set(BUNDLED)
