"""The optimisation problems that pursuits solve. Each owns its maths, written once.

A problem holds its parameters (λ, k, ε) and computes, per signal and for any array namespace
(torch, CuPy, NumPy) and any dictionary operator (a matrix of atoms, a bank of convolution
filters, a chain of layers):

* ``objective(x, op, codes)``: the value it minimises, shape (n,);
* ``prox(v, step)``: the proximal (threshold) operator of ``step`` times its penalty, or the
  projection onto its constraint set;
* ``duality_gap(x, op, codes)`` where it has one (the Lasso): ≥ 0, and 0 exactly at a solution.

Pursuits declare the problem types they solve (``Pursuit.solves``) and receive one
(``pursuit.problem``); models, tasks and benchmarks evaluate objectives through it.

The problems:

* :class:`LeastSquares`: min_h ½‖x − D h‖², the data fit alone (the problem of a pursuit that
  does not declare one).
* :class:`Lasso` ``(lam, positive)``: min_h ½‖x − D h‖² + λ‖h‖₁ (h ≥ 0 if ``positive``). With a
  convolutional operator D h = Σ_i d_i * h_i this is the convolutional basis pursuit (CSC).
* :class:`L0` ``(k)``: min_h ½‖x − D h‖² subject to ‖h‖₀ ≤ k.
* :class:`L0Error` ``(eps)``: min_h ‖h‖₀ subject to ‖x − D h‖₂ ≤ ε (ε a residual *norm*).
* :class:`L0Penalty` ``(lam)``: min_h ½‖x − D h‖² + ½λ²‖h‖₀, whose prox is the hard threshold
  at λ (Blumensath and Davies 2008).
* :class:`MultiLayerLasso` ``(lams, positive)``: the multi-layer basis pursuit of ML-CSC
  (Sulam, Aberdam, Beck and Elad 2019, eq. 4),
  min_{γ_L} ½‖x − D_(1,L) γ_L‖² + Σ_{i<L} λ_i ‖D_(i+1,L) γ_L‖₁ + λ_L ‖γ_L‖₁.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from sparseland.backend import namespace
from sparseland.errors import ConfigError
from sparseland.operators import LinearOperator


def _flat(xp: Any, a: Any) -> Any:
    return xp.reshape(a, (a.shape[0], -1))


def half_squared_residual(x: Any, op: Any, codes: Any) -> Any:
    """½‖x − D h‖² per signal, shape (n,)."""
    xp = namespace(x)
    residual = _flat(xp, x - op.forward(codes))
    return 0.5 * xp.sum(residual * residual, axis=1)


def soft_threshold(v: Any, tau: Any, positive: bool = False) -> Any:
    """S_τ(v) = sign(v)·max(|v| − τ, 0), the prox of τ‖·‖₁; with ``positive`` the prox of
    τ‖·‖₁ + ι(h ≥ 0), max(v − τ, 0): a ReLU with bias −τ. τ is a number or an array that
    broadcasts against v (one per atom or channel); differentiable in v and τ."""
    xp = namespace(v)
    if positive:
        return xp.clip(v - tau, min=0.0)
    return xp.sign(v) * xp.clip(xp.abs(v) - tau, min=0.0)


def soft_threshold_(v: Any, tau: Any, positive: bool, work: Any) -> Any:
    """:func:`soft_threshold` in place on a torch tensor ``v`` (``work``: a buffer of its shape),
    for loops that reuse their buffers: S_τ(v) = v − clip(v, −τ, τ), exact in two passes."""
    if positive:
        return v.sub_(tau).clamp_(min=0.0)
    import torch

    torch.clamp(v, -tau, tau, out=work)
    return v.sub_(work)


def hard_threshold(v: Any, tau: Any, positive: bool = False) -> Any:
    """H_τ(v) = v·1[|v| > τ] (v·1[v > τ] with ``positive``)."""
    xp = namespace(v)
    score = v if positive else xp.abs(v)
    return xp.where(score > tau, v, xp.zeros_like(v))


def keep_largest(v: Any, k: int, positive: bool = False) -> Any:
    """The projection onto {‖h‖₀ ≤ k}: the k largest |v_j| of each signal (torch)."""
    flat = v.reshape(v.shape[0], -1)
    if k > flat.shape[1]:
        raise ConfigError(
            "k",
            f"{k} atoms asked of codes with {flat.shape[1]} entries",
            f"use k <= {flat.shape[1]}",
        )
    score = flat.clamp(min=0.0) if positive else flat.abs()
    index = score.topk(k, dim=1).indices
    kept = flat.gather(1, index)
    if positive:
        kept = kept.clamp(min=0.0)
    return flat.new_zeros(flat.shape).scatter_(1, index, kept).reshape(v.shape)


class Problem(ABC):
    """An optimisation problem over codes h of signals x for a dictionary operator D."""

    #: Short name used in messages and tables.
    name: ClassVar[str] = "problem"

    @abstractmethod
    def objective(self, x: Any, op: Any, codes: Any) -> Any:
        """Per-signal value of the problem's objective, shape (n,)."""

    def prox(self, v: Any, step: Any = 1.0) -> Any:
        """The proximal operator of ``step`` × the penalty (or the constraint's projection)."""
        raise NotImplementedError(f"the {self.name} problem has no proximal operator")

    def duality_gap(self, x: Any, op: Any, codes: Any) -> Any:
        """Per-signal duality gap, shape (n,): ≥ 0, and 0 at a solution."""
        raise NotImplementedError(f"the {self.name} problem has no duality gap")


@dataclass(frozen=True)
class LeastSquares(Problem):
    """min_h ½‖x − D h‖²: the data fit, with no penalty (its prox is the identity)."""

    name: ClassVar[str] = "least_squares"

    def objective(self, x: Any, op: Any, codes: Any) -> Any:
        return half_squared_residual(x, op, codes)

    def prox(self, v: Any, step: Any = 1.0) -> Any:
        return v


@dataclass(frozen=True)
class Lasso(Problem):
    """min_h ½‖x − D h‖² + λ‖h‖₁, h ≥ 0 when ``positive``.

    Its dual (e.g. Mairal et al. 2011, §1.4) is D(ν) = ½‖x‖² − ½‖x − ν‖² subject to
    ‖Dᵀν‖_∞ ≤ λ (Dᵀν ≤ λ for the non-negative Lasso). A feasible ν is the residual
    r = x − D h scaled into the constraint set, so gap(h) = P(h) − D(s·r) ≥ 0, with equality
    exactly at a solution.
    """

    lam: float
    positive: bool = False
    name: ClassVar[str] = "lasso"

    def __post_init__(self) -> None:
        if not self.lam >= 0:
            raise ConfigError("lam", f"must be >= 0, got {self.lam}", "λ weighs the ℓ1 penalty")

    def penalty(self, codes: Any) -> Any:
        """λ‖h‖₁ per signal."""
        xp = namespace(codes)
        return self.lam * xp.sum(xp.abs(_flat(xp, codes)), axis=1)

    def objective(self, x: Any, op: Any, codes: Any) -> Any:
        return half_squared_residual(x, op, codes) + self.penalty(codes)

    def prox(self, v: Any, step: Any = 1.0) -> Any:
        return soft_threshold(v, self.lam * step, self.positive)

    def zero_is_optimal(self, correlation: Any) -> Any:
        """Per signal: is h = 0 a solution? (KKT at 0: ‖Dᵀx‖_∞ ≤ λ, or Dᵀx ≤ λ for h ≥ 0.)"""
        xp = namespace(correlation)
        flat = _flat(xp, correlation)
        return xp.max(flat if self.positive else xp.abs(flat), axis=1) <= self.lam

    def duality_gap(self, x: Any, op: Any, codes: Any) -> Any:
        return self.objective_and_gap(x, op, codes)[1]

    def objective_and_gap(self, x: Any, op: Any, codes: Any) -> tuple[Any, Any, Any]:
        """Per-signal objective P(h), duality gap, and the correlations Dᵀ(x − D h) (as codes),
        from one product with D and one with Dᵀ."""
        residual = x - op.forward(codes)
        adjoint = op.adjoint(residual)
        primal, gap = self.gap_from(x, residual, adjoint, codes)
        return primal, gap, adjoint

    def gap_from(self, x: Any, residual: Any, correlation: Any, codes: Any) -> tuple[Any, Any]:
        """P(h) and the duality gap per signal from the residual x − D h and the correlations
        Dᵀ(x − D h) a solver already has."""
        xp = namespace(x)
        correlation = _flat(xp, correlation)
        # the dual constraint: ‖Dᵀν‖_∞ ≤ λ, or only Dᵀν ≤ λ when h ≥ 0
        worst = xp.max(correlation if self.positive else xp.abs(correlation), axis=1)
        l1 = xp.sum(xp.abs(_flat(xp, codes)), axis=1)
        return self.gap_terms(x, residual, worst, l1)

    def gap_terms(self, x: Any, residual: Any, worst: Any, l1: Any) -> tuple[Any, Any]:
        """P(h) and the gap from the residual, the largest dual-constraint value over the atoms
        (max_j |d_jᵀr|, or max_j d_jᵀr for h ≥ 0) and ‖h‖₁, per signal."""
        xp = namespace(x)
        tiny = xp.finfo(x.dtype).tiny
        scale = xp.minimum(
            xp.ones_like(worst), self.lam / xp.maximum(worst, xp.full_like(worst, tiny))
        )
        r, xf = _flat(xp, residual), _flat(xp, x)
        nu = r * scale[:, None]
        dual = 0.5 * xp.sum(xf * xf, axis=1) - 0.5 * xp.sum((xf - nu) ** 2, axis=1)
        primal = 0.5 * xp.sum(r * r, axis=1) + self.lam * l1
        return primal, primal - dual


@dataclass(frozen=True)
class L0(Problem):
    """min_h ½‖x − D h‖² subject to ‖h‖₀ ≤ k."""

    k: int
    positive: bool = False
    name: ClassVar[str] = "l0"

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError("k", f"must be >= 1, got {self.k}")

    def objective(self, x: Any, op: Any, codes: Any) -> Any:
        return half_squared_residual(x, op, codes)

    def prox(self, v: Any, step: Any = 1.0) -> Any:
        return keep_largest(v, self.k, self.positive)


@dataclass(frozen=True)
class L0Error(Problem):
    """min_h ‖h‖₀ subject to ‖x − D h‖₂ ≤ ε: ``eps`` is a residual norm, not its square."""

    eps: float
    name: ClassVar[str] = "l0_error"

    def __post_init__(self) -> None:
        if not self.eps >= 0:
            raise ConfigError("eps", f"must be >= 0, got {self.eps}", "ε bounds ‖x − D h‖₂")

    def objective(self, x: Any, op: Any, codes: Any) -> Any:
        xp = namespace(codes)
        return xp.sum(xp.astype(_flat(xp, codes) != 0, codes.dtype), axis=1)

    def feasible(self, x: Any, op: Any, codes: Any) -> Any:
        """Per signal: ‖x − D h‖₂ ≤ ε."""
        return half_squared_residual(x, op, codes) <= 0.5 * self.eps * self.eps


@dataclass(frozen=True)
class L0Penalty(Problem):
    """min_h ½‖x − D h‖² + ½λ²‖h‖₀: for an orthogonal D solved by the hard threshold at λ."""

    lam: float
    positive: bool = False
    name: ClassVar[str] = "l0_penalty"

    def objective(self, x: Any, op: Any, codes: Any) -> Any:
        xp = namespace(codes)
        count = xp.sum(xp.astype(_flat(xp, codes) != 0, codes.dtype), axis=1)
        return half_squared_residual(x, op, codes) + 0.5 * self.lam**2 * count

    def prox(self, v: Any, step: Any = 1.0) -> Any:
        # argmin_h ½(h − v)² + step·½λ²·1[h ≠ 0]: keep v where v² > step·λ²
        return hard_threshold(v, self.lam * step**0.5, self.positive)


@runtime_checkable
class LayeredOperator(Protocol):
    """A chain of dictionaries D_(1,L) = D_1 D_2 ⋯ D_L (e.g. multi-layer convolutional)."""

    @property
    def n_layers(self) -> int: ...

    def forward(self, codes: Any) -> Any: ...

    def layer_forward(self, i: int, codes: Any) -> Any: ...


@dataclass(frozen=True)
class MultiLayerLasso(Problem):
    """The multi-layer basis pursuit: one λ per layer (a single λ serves every layer)."""

    lams: tuple[float, ...]
    positive: bool = True
    name: ClassVar[str] = "multilayer_lasso"

    def __post_init__(self) -> None:
        if len(self.lams) < 1 or any(not v >= 0 for v in self.lams):
            raise ConfigError("lam", f"must be non-negative values, got {list(self.lams)}")

    def per_layer(self, n_layers: int) -> list[float]:
        """λ_1 … λ_L for a chain of ``n_layers`` dictionaries."""
        return per_layer(self.lams, n_layers)

    def prox(self, v: Any, step: Any = 1.0, layer: int = 1) -> Any:
        """The threshold of layer ``layer`` (1-based) with step s: T_{s·λ_layer}."""
        lam = self.lams[0] if len(self.lams) == 1 else self.lams[layer - 1]
        return soft_threshold(v, lam * step, self.positive)

    def objective(self, x: Any, op: LayeredOperator, codes: Any) -> Any:
        """½‖x − D_(1,L)γ_L‖² + Σ_i λ_i‖D_(i+1,L)γ_L‖₁ for the deepest codes γ_L."""
        xp = namespace(codes)
        lams = self.per_layer(op.n_layers)
        total = half_squared_residual(x, op, codes)
        z = codes
        for i in range(op.n_layers, 0, -1):
            total = total + lams[i - 1] * xp.sum(xp.abs(_flat(xp, z)), axis=1)
            if i > 1:
                z = op.layer_forward(i, z)
        return total


def per_layer(values: Sequence[Any], n_layers: int, name: str = "lam") -> list[Any]:
    """A list given for every layer, or one value for all."""
    values = list(values)
    if len(values) == 1:
        return values * n_layers
    if len(values) != n_layers:
        raise ConfigError(
            f"pursuit.{name}",
            f"has {len(values)} values for {n_layers} layers",
            "give one value per layer, or a single value for all",
        )
    return values


__all__ = [
    "L0",
    "L0Error",
    "L0Penalty",
    "Lasso",
    "LayeredOperator",
    "LeastSquares",
    "LinearOperator",
    "MultiLayerLasso",
    "Problem",
    "half_squared_residual",
    "hard_threshold",
    "keep_largest",
    "per_layer",
    "soft_threshold",
    "soft_threshold_",
]
