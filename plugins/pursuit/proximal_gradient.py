"""ISTA and FISTA for the Lasso, batched over signals, written once for any array namespace.

min_h ½‖x − D h‖² + λ‖h‖₁  (optionally h ≥ 0)

ISTA (Daubechies, Defrise and De Mol 2004): h ← S_{λ/L}(h − Dᵀ(D h − x)/L), L = ‖D‖².
FISTA (Beck and Teboulle 2009, eq. 4.1–4.3) adds momentum on an extrapolated point y:
    h_k = S_{λ/L}(y_k − ∇f(y_k)/L),  t_{k+1} = (1 + √(1 + 4t_k²))/2,
    y_{k+1} = h_k + (t_k − 1)/t_{k+1} · (h_k − h_{k−1}).
Adaptive restart (O'Donoghue and Candès 2015, gradient scheme): per signal, t ← 1 whenever
(y_k − h_k)ᵀ(h_k − h_{k−1}) > 0, i.e. the momentum points uphill.
The non-negative soft threshold S⁺_τ(v) = max(v − τ, 0) is a ReLU with bias −τ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sparseland.backend import namespace
from sparseland.errors import check
from sparseland.interfaces import Pursuit, PursuitConfig, PursuitInfo
from sparseland.lasso import lasso_duality_gap
from sparseland.operators import LinearOperator, array_device


@dataclass
class LassoPursuitConfig(PursuitConfig):
    lam: float = 0.1
    max_iter: int = 200
    tol: float = 1e-5  # stop when every signal's relative change ‖h_k − h_{k−1}‖/‖h_k‖ < tol
    positive: bool = False
    check_every: int = 10  # convergence checks synchronise with the device: not every step
    compute_gap: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.lam >= 0, "lam", f"must be >= 0, got {self.lam}", "λ weighs the ℓ1 penalty")
        check(self.max_iter >= 1, "max_iter", f"must be >= 1, got {self.max_iter}")
        check(self.tol >= 0, "tol", f"must be >= 0, got {self.tol}")
        check(self.check_every >= 1, "check_every", f"must be >= 1, got {self.check_every}")


@dataclass
class ProximalGradientConfig(LassoPursuitConfig):
    step_scale: float = 1.0  # step = step_scale / L; 1 guarantees convergence, > 2 diverges

    def __post_init__(self) -> None:
        super().__post_init__()
        check(
            self.step_scale > 0,
            "step_scale",
            f"must be > 0, got {self.step_scale}",
            "1 is the 1/L step that guarantees convergence",
        )


def shrink(xp: Any, v: Any, tau: float, positive: bool) -> Any:
    """Soft threshold S_τ(v) = sign(v)·max(|v| − τ, 0) = v − clip(v, −τ, τ) (two passes, exact).

    Non-negative: max(v − τ, 0), a ReLU with bias −τ.
    """
    if positive:
        return xp.clip(v - tau, min=0.0)
    return v - xp.clip(v, min=-tau, max=tau)


def _row_norms(xp: Any, a: Any) -> Any:
    return xp.linalg.vector_norm(xp.reshape(a, (a.shape[0], -1)), axis=1)


def proximal_gradient(
    x: Any,
    op: LinearOperator,
    init: Any | None,
    config: ProximalGradientConfig,
    accelerate: bool,
    restart: bool = False,
) -> tuple[Any, PursuitInfo]:
    xp = namespace(x)
    lipschitz = op.lipschitz(x)
    step = config.step_scale / lipschitz
    threshold = config.lam * step
    shape = op.code_shape(x)
    h = xp.zeros(shape, dtype=x.dtype, device=array_device(x)) if init is None else init
    y = h
    # The gradient step y − (Dᵀ(D y) − Dᵀx)/L with 1/L folded into the small D y (n × m) and
    # Dᵀx/L computed once: two GEMMs and two passes over the codes per iteration.
    bias = op.adjoint(x) * step
    t: Any = 1.0
    if restart:
        t = xp.ones((shape[0],) + (1,) * (len(shape) - 1), dtype=x.dtype, device=array_device(x))
    rel = math.inf
    it = 0
    for it in range(1, config.max_iter + 1):
        forward_step = y - op.adjoint(op.forward(y) * step) + bias
        h_new = shrink(xp, forward_step, threshold, config.positive)
        if accelerate:
            diff = h_new - h
            if restart:
                uphill = xp.sum(xp.reshape((y - h_new) * diff, (shape[0], -1)), axis=1)
                t = xp.where(xp.reshape(uphill > 0, t.shape), xp.ones_like(t), t)
                t_new = (1.0 + xp.sqrt(1.0 + 4.0 * t * t)) / 2.0
            else:
                t_new = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
            y = h_new + ((t - 1.0) / t_new) * diff
            t = t_new
        else:
            y = h_new
        if it % config.check_every == 0 or it == config.max_iter:
            change = _row_norms(xp, h_new - h) / xp.clip(_row_norms(xp, h_new), min=1e-30)
            rel = float(xp.max(change))
            if rel < config.tol:
                h = h_new
                break
        h = h_new
    gap = math.nan
    if config.compute_gap:
        gap = float(xp.mean(lasso_duality_gap(x, op, h, config.lam, config.positive)))
    return h, PursuitInfo(iterations=it, rel_change=rel, duality_gap=gap)


class ProximalGradientPursuit(Pursuit):
    accelerate = False

    def solve(self, x: Any, op: LinearOperator, init: Any | None) -> Any:
        restart = bool(getattr(self.config, "restart", False))
        codes, self.info = proximal_gradient(x, op, init, self.config, self.accelerate, restart)  # type: ignore[arg-type]
        return codes
