"""The Lasso: objective, optimality and duality gap, written once against any array namespace.

P(h) = ½‖x − D h‖² + λ‖h‖₁ (per signal). Its dual (e.g. Mairal et al. 2011, §1.4) is
D(ν) = ½‖x‖² − ½‖x − ν‖² subject to ‖Dᵀν‖_∞ ≤ λ (Dᵀν ≤ λ for the non-negative Lasso).
A feasible ν is the residual r = x − D h scaled into the constraint set, so
gap(h) = P(h) − D(s·r) ≥ 0, and gap = 0 exactly at a solution.
"""

from __future__ import annotations

from typing import Any

from sparseland.backend import namespace
from sparseland.operators import LinearOperator


def _flat(xp: Any, a: Any) -> Any:
    return xp.reshape(a, (a.shape[0], -1))


def lasso_objective(x: Any, op: LinearOperator, codes: Any, lam: float) -> Any:
    """Per-signal objective, shape (n,)."""
    xp = namespace(x)
    residual = _flat(xp, x - op.forward(codes))
    return 0.5 * xp.sum(residual * residual, axis=1) + lam * xp.sum(
        xp.abs(_flat(xp, codes)), axis=1
    )


def lasso_duality_gap(
    x: Any, op: LinearOperator, codes: Any, lam: float, positive: bool = False
) -> Any:
    """Per-signal duality gap P(h) − D(ν), shape (n,)."""
    xp = namespace(x)
    residual = x - op.forward(codes)
    correlation = _flat(xp, op.adjoint(residual))
    # the dual constraint: ‖Dᵀν‖_∞ ≤ λ, or only Dᵀν ≤ λ when h ≥ 0
    worst = xp.max(correlation if positive else xp.abs(correlation), axis=1)
    tiny = xp.finfo(x.dtype).tiny
    scale = xp.minimum(xp.ones_like(worst), lam / xp.maximum(worst, xp.full_like(worst, tiny)))
    r = _flat(xp, residual)
    xf = _flat(xp, x)
    nu = r * scale[:, None]
    dual = 0.5 * xp.sum(xf * xf, axis=1) - 0.5 * xp.sum((xf - nu) ** 2, axis=1)
    return lasso_objective(x, op, codes, lam) - dual
