"""Pursuit ``example_iht``: iterative hard thresholding for the k-sparse approximation problem.

    min_h ½‖x − D h‖²  subject to  ‖h‖₀ ≤ k

IHT (Blumensath and Davies 2008, "Iterative thresholding for sparse approximations", eq. 3):

    h ← H_k(h + μ Dᵀ(x − D h)),

where H_k keeps the k entries of largest magnitude of each code and zeroes the rest.

* ``normalized=false``: the fixed step μ = step_scale/‖D‖² minimises a majoriser of the
  objective, so ‖x − D h‖ never increases (their Theorem 1); but a step that short rarely moves
  an atom out of the support found at the first iteration.
* ``normalized=true`` (default): normalised IHT (Blumensath and Davies 2010, "Normalized
  iterative hard thresholding: guaranteed stability and performance", Algorithm 2). Each
  signal gets the exact line-search step on its current support Γ,
  μ = ‖g_Γ‖² / ‖D g_Γ‖² with g = Dᵀ(x − D h); when the support changes the step is accepted
  only if μ ≤ (1 − c)‖h⁺ − h‖² / ‖D(h⁺ − h)‖², otherwise μ ← μ / (κ(1 − c)) (their eq. 14),
  which keeps the residual non-increasing.

Every fixed point is the least-squares fit of x on its support. Written once against the array
namespace of ``x`` (torch on CPU or GPU, CuPy with ``pursuit.backend=cupy``) and any dictionary
operator (``D h``, ``Dᵀ x``); all signals of a batch are updated at once, each with its own step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sparseland import register_pursuit
from sparseland.backend import namespace
from sparseland.errors import check
from sparseland.interfaces import Pursuit, PursuitConfig, PursuitInfo
from sparseland.operators import LinearOperator, array_device
from sparseland.problems import L0

SHRINK_C = 0.01  # c in the step acceptance test
SHRINK_KAPPA = 2.0  # κ: the step shrinks by κ(1 − c) per rejection
MAX_SHRINKS = 30


@dataclass
class IhtConfig(PursuitConfig):
    n_nonzero: int = 4  # k: non-zeros kept in every code
    max_iter: int = 300
    tol: float = 1e-6  # stop when every code's relative change ‖h_t − h_{t−1}‖/‖h_t‖ < tol
    normalized: bool = True  # adaptive step per signal (NIHT); false: fixed step_scale/‖D‖²
    step_scale: float = 1.0  # fixed step μ = step_scale/‖D‖², in (0, 1] for monotone descent
    check_every: int = 10  # convergence checks synchronise with the device: not every step

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.n_nonzero >= 1, "n_nonzero", f"must be >= 1, got {self.n_nonzero}")
        check(self.max_iter >= 1, "max_iter", f"must be >= 1, got {self.max_iter}")
        check(self.tol >= 0, "tol", f"must be >= 0, got {self.tol}")
        check(
            0 < self.step_scale <= 1,
            "step_scale",
            f"must be in (0, 1], got {self.step_scale}",
            "a step above 1/‖D‖² can make the residual grow",
        )
        check(self.check_every >= 1, "check_every", f"must be >= 1, got {self.check_every}")


def hard_threshold(xp: Any, v: Any, k: int) -> Any:
    """H_k: keep the ``k`` largest-magnitude entries of each row of ``v`` (n, p).

    Entries tied with the k-th largest magnitude are all kept (a tie between non-zero reals
    has probability zero; rows with fewer than k non-zeros are returned unchanged).
    """
    if k >= v.shape[1]:
        return v
    magnitude = xp.abs(v)
    kth = xp.sort(magnitude, axis=1, descending=True, stable=False)[:, k - 1 : k]
    return xp.where(magnitude >= kth, v, xp.zeros_like(v))


def _sq_norms(xp: Any, a: Any) -> Any:
    """‖a_i‖² of every signal, shape (n, 1, ..., 1) to broadcast against ``a``."""
    flat = xp.reshape(a, (a.shape[0], -1))
    return xp.reshape(xp.sum(flat * flat, axis=1), (a.shape[0],) + (1,) * (a.ndim - 1))


@register_pursuit("example_iht", config=IhtConfig)
class IterativeHardThresholding(Pursuit):
    config: IhtConfig
    solves = (L0,)  # the problem it solves, built from its config

    @classmethod
    def problem_from(cls, config: Any) -> L0:
        return L0(config.n_nonzero)

    def solve(self, x: Any, op: LinearOperator, init: Any | None) -> Any:
        c = self.config
        xp = namespace(x)
        shape = op.code_shape(x)
        n = shape[0]

        def threshold(v: Any) -> Any:
            return xp.reshape(hard_threshold(xp, xp.reshape(v, (n, -1)), c.n_nonzero), shape)

        fixed_step = c.step_scale / op.lipschitz(x)
        h = xp.zeros(shape, dtype=x.dtype, device=array_device(x)) if init is None else init
        h = threshold(h)
        rel, it, met = math.inf, 0, 0.0  # met: the fraction of codes below tol at the last check
        for it in range(1, c.max_iter + 1):
            g = op.adjoint(x - op.forward(h))
            h_new = (
                self._normalized_step(xp, op, h, g, threshold, fixed_step)
                if c.normalized
                else threshold(h + fixed_step * g)
            )
            if it % c.check_every == 0 or it == c.max_iter:
                change = xp.sqrt(
                    _sq_norms(xp, h_new - h) / xp.clip(_sq_norms(xp, h_new), min=1e-60)
                )
                rel = float(xp.max(change))
                met = float(xp.mean(xp.astype(change < c.tol, xp.float64)))
                if rel < c.tol:
                    h = h_new
                    break
            h = h_new
        converged = met if c.tol > 0 else math.nan  # tol = 0: a fixed budget, nothing to meet
        self.info = PursuitInfo(it, rel, converged_fraction=converged, max_gap=rel)
        return h

    @staticmethod
    def _normalized_step(
        xp: Any, op: LinearOperator, h: Any, g: Any, threshold: Any, fallback: float
    ) -> Any:
        """One NIHT step, each signal with its own step μ (Blumensath and Davies 2010)."""
        support = h != 0
        # Γ: the current support; at the start (h = 0) the support H_k(g) would pick.
        empty = _sq_norms(xp, xp.astype(support, h.dtype)) == 0
        support = xp.where(empty, threshold(g) != 0, support)
        g_s = xp.where(support, g, xp.zeros_like(g))
        num, den = _sq_norms(xp, g_s), _sq_norms(xp, op.forward(g_s))
        mu = xp.where(den > 0, num / xp.clip(den, min=1e-300), xp.full_like(num, fallback))
        h_new = threshold(h + mu * g)
        for _ in range(MAX_SHRINKS):
            changed = xp.any(xp.reshape((h_new != 0) != support, (h.shape[0], -1)), axis=1)
            diff = h_new - h
            omega = (
                (1.0 - SHRINK_C)
                * _sq_norms(xp, diff)
                / xp.clip(_sq_norms(xp, op.forward(diff)), min=1e-300)
            )
            reject = xp.reshape(changed, mu.shape) & (mu > omega)
            if not bool(xp.any(reject)):
                break
            mu = xp.where(reject, mu / (SHRINK_KAPPA * (1.0 - SHRINK_C)), mu)
            h_new = xp.where(reject, threshold(h + mu * g), h_new)
        return h_new
