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

import torch

from sparseland.backend import namespace
from sparseland.errors import check
from sparseland.interfaces import Pursuit, PursuitConfig, PursuitInfo
from sparseland.interfaces.pursuit import warn_not_converged
from sparseland.momentum import next_momentum
from sparseland.operators import LinearOperator, MatrixOperator, array_device
from sparseland.options import option
from sparseland.problems import Lasso, soft_threshold, soft_threshold_


@dataclass
class LassoPursuitConfig(PursuitConfig):
    lam: float = option(0.1, "Lasso weight λ of ‖h‖₁")
    max_iter: int = option(200, "iterations per signal")
    tol: float = option(
        1e-5, "stop when every signal's relative change ‖h_k − h_{k−1}‖/‖h_k‖ < tol"
    )
    positive: bool = option(False, "constrain the codes to h ≥ 0")
    check_every: int = option(
        10, "iterations between convergence checks (each synchronises with the device)"
    )
    compute_gap: bool = option(True, "report the duality gap in the pursuit's info")

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.lam >= 0, "lam", f"must be >= 0, got {self.lam}", "λ weighs the ℓ1 penalty")
        check(self.max_iter >= 1, "max_iter", f"must be >= 1, got {self.max_iter}")
        check(self.tol >= 0, "tol", f"must be >= 0, got {self.tol}")
        check(self.check_every >= 1, "check_every", f"must be >= 1, got {self.check_every}")


@dataclass
class ProximalGradientConfig(LassoPursuitConfig):
    step_scale: float = option(1.0, "step = step_scale / L; 1 guarantees convergence, > 2 diverges")

    def __post_init__(self) -> None:
        super().__post_init__()
        check(
            self.step_scale > 0,
            "step_scale",
            f"must be > 0, got {self.step_scale}",
            "1 is the 1/L step that guarantees convergence",
        )


UNEQUAL_NORMS = 1.01  # atoms whose norms differ by more than this ratio are rescaled


def _row_norms(xp: Any, a: Any) -> Any:
    return xp.linalg.vector_norm(xp.reshape(a, (a.shape[0], -1)), axis=1)


def report_convergence(
    name: str, config: LassoPursuitConfig, iterations: int, stalled: int, total: int
) -> None:
    """The one warning per call of an iterative pursuit that ran out of iterations."""
    if iterations >= config.max_iter and config.tol > 0:
        warn_not_converged(name, stalled, total, config.max_iter, config.tol)


def converged_fraction(
    config: LassoPursuitConfig, iterations: int, stalled: int, total: int
) -> float:
    """The fraction of a call's signals that met the tolerance (NaN without one: tol = 0)."""
    if config.tol <= 0:
        return math.nan
    if iterations < config.max_iter or total <= 0:
        return 1.0
    return 1.0 - stalled / total


def unit_atoms(op: LinearOperator) -> tuple[LinearOperator, Any | None]:
    """A matrix dictionary with atoms of unequal norms, rescaled to unit norm, and the norms.

    With D̃ = D diag(1/‖d_j‖) and h̃_j = ‖d_j‖ h_j the Lasso becomes a weighted one,
    ½‖x − D̃ h̃‖² + Σ_j (λ/‖d_j‖)|h̃_j|, whose soft threshold is per atom: the same solution,
    but the step 1/L no longer follows the largest atom, so small atoms converge as fast as
    unit ones (a diagonal, Jacobi, preconditioner). Equal norms (unit atoms included) and
    implicit operators are left as they are: (op, None).
    """
    matrix = op.matrix if isinstance(op, MatrixOperator) else None
    if matrix is None or getattr(matrix, "ndim", 0) != 2 or matrix.shape[1] == 0:
        return op, None
    xp = namespace(matrix)
    norms = xp.linalg.vector_norm(matrix, axis=0)
    live = norms > 0
    if not bool(xp.any(live)):
        return op, None
    largest, smallest = float(xp.max(norms)), float(xp.min(norms[live]))
    if largest <= UNEQUAL_NORMS * smallest:
        return op, None
    norms = xp.where(live, norms, xp.ones_like(norms))  # a zero atom stays zero
    return MatrixOperator(matrix / norms), norms


def _in_place_ok(x: Any, op: LinearOperator, init: Any | None) -> bool:
    """The buffer-reusing torch loop applies when nothing asks for a gradient through it."""
    if not isinstance(x, torch.Tensor):
        return False
    if not torch.is_grad_enabled():
        return True
    matrix = op.matrix if isinstance(op, MatrixOperator) else None
    tensors = [x, init, matrix]
    return not any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors)


def proximal_gradient(
    x: Any,
    op: LinearOperator,
    init: Any | None,
    config: ProximalGradientConfig,
    problem: Lasso,
    accelerate: bool,
    restart: bool = False,
) -> tuple[Any, PursuitInfo]:
    xp = namespace(x)
    shape = op.code_shape(x)
    solve_op, norms = unit_atoms(op)
    correlation = solve_op.adjoint(x)
    # h = 0 is optimal iff |d_jᵀx| ≤ λ for every atom: |d̃_jᵀx| ≤ λ/‖d_j‖ after the scaling.
    # Such signals are converged from the start: no stop test may divide by their ‖h‖ = 0.
    original = correlation if norms is None else op.adjoint(x)  # not rounded by the rescaling
    done = problem.zero_is_optimal(original)
    if bool(xp.all(done)):  # every code is zero at the optimum: nothing to iterate
        h = xp.zeros(shape, dtype=x.dtype, device=array_device(x))
        return h, PursuitInfo(0, 0.0, 0.0, converged_fraction=1.0, max_gap=0.0)
    step = config.step_scale / solve_op.lipschitz(x)
    tau: Any = problem.lam * step if norms is None else (problem.lam * step) / norms
    # The gradient step y − (Dᵀ(D y) − Dᵀx)/L with 1/L folded into the small D y (n × m) and
    # Dᵀx/L computed once: two GEMMs and two passes over the codes per iteration.
    bias = correlation * step
    start = init if init is None or norms is None else init * norms
    loop = _torch_loop if _in_place_ok(x, solve_op, start) else _namespace_loop
    h, it, change = loop(
        x, solve_op, start, bias, step, tau, config, problem.positive, accelerate, restart
    )
    if norms is not None:
        h = h / norms
    change = xp.where(done, xp.zeros_like(change), change)
    rel = float(xp.max(change))
    stalled = int(xp.sum(xp.astype(change >= config.tol, xp.int64)))
    report_convergence("fista" if accelerate else "ista", config, it, stalled, shape[0])
    gap, worst = math.nan, rel
    if config.compute_gap:
        gaps = problem.duality_gap(x, op, h)
        gap, worst = float(xp.mean(gaps)), float(xp.max(gaps))
    return h, PursuitInfo(
        iterations=it,
        rel_change=rel,
        duality_gap=gap,
        converged_fraction=converged_fraction(config, it, stalled, shape[0]),
        max_gap=worst,
    )


def _relative_change(xp: Any, new: Any, difference: Any) -> Any:
    return _row_norms(xp, difference) / xp.clip(_row_norms(xp, new), min=1e-30)


def _namespace_loop(
    x: Any,
    op: LinearOperator,
    init: Any | None,
    bias: Any,
    step: float,
    threshold: Any,
    config: ProximalGradientConfig,
    positive: bool,
    accelerate: bool,
    restart: bool,
) -> tuple[Any, int, Any]:
    """ISTA/FISTA on any array namespace (and through autograd): codes, iterations and the
    per-signal relative change at the last check."""
    xp = namespace(x)
    shape = op.code_shape(x)
    h = xp.zeros(shape, dtype=x.dtype, device=array_device(x)) if init is None else init
    y = h
    t: Any = 1.0
    if restart:
        t = xp.ones((shape[0],) + (1,) * (len(shape) - 1), dtype=x.dtype, device=array_device(x))
    change = None
    it = 0
    for it in range(1, config.max_iter + 1):
        forward_step = y - op.adjoint(op.forward(y) * step) + bias
        h_new = soft_threshold(forward_step, threshold, positive)
        if accelerate:
            diff = h_new - h
            if restart:
                uphill = xp.sum(xp.reshape((y - h_new) * diff, (shape[0], -1)), axis=1)
                t = xp.where(xp.reshape(uphill > 0, t.shape), xp.ones_like(t), t)
            t, beta = next_momentum(t)
            y = h_new + beta * diff
        else:
            y = h_new
        if it % config.check_every == 0 or it == config.max_iter:
            change = _relative_change(xp, h_new, h_new - h)
            if float(xp.max(change)) < config.tol:
                h = h_new
                break
        h = h_new
    return h, it, change


def _torch_loop(
    x: torch.Tensor,
    op: LinearOperator,
    init: torch.Tensor | None,
    bias: torch.Tensor,
    step: float,
    tau: Any,
    config: ProximalGradientConfig,
    positive: bool,
    accelerate: bool,
    restart: bool,
) -> tuple[torch.Tensor, int, torch.Tensor]:
    """The same iteration in torch on preallocated buffers (in-place, ``out=``): no allocation
    per step, so no page faults from fresh memory on the CPU."""
    h = torch.zeros_like(bias) if init is None else init.detach().to(bias.dtype).clone()
    h_new, work = torch.empty_like(h), torch.empty_like(h)
    y = h.clone() if accelerate else h
    matrix = op.matrix if isinstance(op, MatrixOperator) else None
    scaled = None
    if isinstance(matrix, torch.Tensor) and matrix.ndim == 2 and h.ndim == 2:
        scaled = (matrix * step).detach()  # 1/L folded into one factor of the two GEMMs
        product = torch.empty(h.shape[0], matrix.shape[0], dtype=h.dtype, device=h.device)
        atoms_t = matrix.detach().T
    t: Any = 1.0
    if restart:
        t = torch.ones((h.shape[0],) + (1,) * (h.ndim - 1), dtype=h.dtype, device=h.device)
    change = torch.full((h.shape[0],), math.inf, dtype=h.dtype, device=h.device)
    it = 0
    for it in range(1, config.max_iter + 1):
        # h_new = y − Dᵀ(D y)/L + Dᵀx/L, then the soft threshold in place
        if scaled is not None:
            torch.mm(y, atoms_t, out=product)
            torch.addmm(bias, product, scaled, alpha=-1.0, out=work)
        else:
            torch.sub(bias, op.adjoint(op.forward(y) * step), out=work)
        torch.add(y, work, out=h_new)
        soft_threshold_(h_new, tau, positive, work)  # τ: a number or one per atom
        torch.sub(h_new, h, out=work)  # the step h_k − h_{k−1}
        checking = it % config.check_every == 0 or it == config.max_iter
        if checking:
            change = _relative_change(namespace(h_new), h_new, work)
        if accelerate:
            if restart:
                # uphill momentum (y − h_k)ᵀ(h_k − h_{k−1}) > 0 resets t (y is free now)
                uphill = y.sub_(h_new).mul_(work).reshape(h.shape[0], -1).sum(dim=1)
                t = torch.where(uphill.reshape(t.shape) > 0, 1.0, t)
                t, beta = next_momentum(t)
                torch.addcmul(h_new, beta, work, out=y)
            else:
                t, beta = next_momentum(t)
                torch.add(h_new, work, alpha=beta, out=y)
        h, h_new = h_new, h
        if not accelerate:
            y = h
        if checking and float(change.max()) < config.tol:
            break
    return h, it, change


class LassoPursuit(Pursuit):
    """A pursuit for the Lasso: its problem is ``Lasso(lam, positive)`` from its config."""

    solves = (Lasso,)
    problem: Lasso

    @classmethod
    def problem_from(cls, config: Any) -> Lasso:
        return Lasso(config.lam, config.positive)


class ProximalGradientPursuit(LassoPursuit):
    accelerate = False
    restart = False  # FISTA's adaptive restart (fista's config sets it)

    def solve(self, x: Any, op: LinearOperator, init: Any | None) -> Any:
        config: ProximalGradientConfig = self.config  # type: ignore[assignment]
        codes, self.info = proximal_gradient(
            x, op, init, config, self.problem, self.accelerate, self.restart
        )
        return codes
