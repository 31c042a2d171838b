"""Pursuit: infer the codes of a batch of signals for a fixed dictionary.

Input policy, shared by every pursuit (``Pursuit.__call__``):

* signals and dictionary are torch tensors or numpy arrays; numpy signals give numpy codes.
* both must be floating point and finite (NaN/Inf is refused with :class:`NonFiniteError`).
* dtypes: the signals set the precision. A matrix dictionary of another dtype is cast to the
  signals' dtype. float16 and bfloat16 signals are solved in float32 (the eigenvalue, Cholesky
  and inverse kernels the pursuits rely on have no half-precision form) and the codes are
  returned in the signals' dtype.
* an all-zero atom gets a zero coefficient: it is left out of the solve (it can neither reduce
  the residual nor be selected), so no pursuit divides by its zero norm.
* an empty batch (0 signals) returns empty codes.

Problems: a pursuit solves an optimisation problem (framework/problems.py) that it does not
own. It declares the problem types it solves (``solves``) and builds its problem from its config
(``problem_from``), so ``pursuit.lam=0.2`` stays the one spelling on the command line;
``pursuit.problem`` is what models, tasks and benchmarks read λ, k or ε from and evaluate
objectives with. ``pursuit.with_problem(Lasso(0.05))`` is the same solver for another problem.

Shared parameter names have one meaning in every pursuit:

* ``lam``: the weight λ of the penalty (the Lasso's ℓ1 weight, or a threshold);
* ``k``: the largest number of non-zero coefficients per signal;
* ``eps``: a bound on the residual *norm* ‖x − D h‖₂ (not its square);
* ``max_iter``: the most iterations of the algorithm's main loop, each one update of every
  signal's code: a proximal-gradient step (ista, fista), an ADMM round (admm, csc_admm), one
  greedy coordinate update (cod), one homotopy step per pass (active_set);
* ``tol``: the stopping tolerance on the pursuit's own convergence measure, stated in its
  config (a relative change of the codes, or a relative duality gap).

``info`` (:class:`PursuitInfo`) reports the same fields for every pursuit: ``iterations`` (outer
iterations run), ``rel_change`` (the relative change of the codes at the last iteration, or for
one-pass and greedy pursuits the mean relative residual ‖x − D h‖/‖x‖) and ``duality_gap``
(mean over signals where the problem has one, NaN otherwise).
"""

from __future__ import annotations

import sys
import warnings
from abc import abstractmethod
from dataclasses import dataclass
from types import FrameType
from typing import Any, ClassVar

import numpy as np
import torch

from sparseland import convergence, option
from sparseland.backend import BACKENDS, to_backend, to_torch
from sparseland.errors import ConfigError, NonFiniteError, ShapeError, check
from sparseland.interfaces.plugin import Plugin
from sparseland.operators import LinearOperator, MatrixOperator
from sparseland.problems import Lasso, LeastSquares, Problem
from sparseland.registry import PluginConfig

HALF_PRECISION = (torch.float16, torch.bfloat16)


class ConvergenceWarning(UserWarning):
    """An iterative pursuit stopped at ``max_iter`` before reaching its tolerance."""


def _caller_stacklevel() -> int:
    """The stack level of the first caller outside Sparseland (for ``warnings.warn``)."""
    frame: FrameType | None = sys._getframe(2)
    level = 2
    while frame is not None and frame.f_globals.get("__name__", "").startswith("sparseland"):
        frame, level = frame.f_back, level + 1
    return level


def warn_not_converged(pursuit: str, stalled: int, total: int, max_iter: int, tol: float) -> None:
    """Warn once for a call in which ``stalled`` of ``total`` signals ran out of iterations
    (attributed to the first caller outside Sparseland). Inside a run the call is recorded
    instead (:mod:`sparseland.convergence`) and the run reports it once."""
    if stalled <= 0 or total <= 0 or convergence.recording():
        return
    warnings.warn(
        f"{pursuit}: {stalled} of {total} signals ({stalled / total:.1%}) stopped at "
        f"max_iter={max_iter} short of tol={tol:g}; raise max_iter (or tol) for converged codes.",
        ConvergenceWarning,
        stacklevel=_caller_stacklevel(),
    )


@dataclass
class PursuitConfig(PluginConfig):
    backend: str = option("torch", "array library the pursuit runs on: torch or cupy")

    def __post_init__(self) -> None:
        check(
            self.backend in BACKENDS,
            "backend",
            f"'{self.backend}' is not a backend",
            f"choose one of {', '.join(BACKENDS)}",
        )


@dataclass
class PursuitInfo:
    """What a pursuit did on its last call (logged by the model).

    ``converged_fraction``: the fraction of the call's signals that met the tolerance (1.0 for
    exact pursuits such as OMP and thresholding; NaN for a fixed number of steps, where there
    is no tolerance to meet). ``max_gap``: the worst remaining duality gap over the signals
    where the pursuit computes it, else the worst relative change of the last check.
    """

    iterations: int
    rel_change: float = float("nan")
    duality_gap: float = float("nan")  # mean over signals, Lasso solvers only
    converged_fraction: float = float("nan")
    max_gap: float = float("nan")

    def as_metrics(self, prefix: str = "pursuit/") -> dict[str, float]:
        out = {
            f"{prefix}iterations": float(self.iterations),
            f"{prefix}rel_change": self.rel_change,
        }
        optional = {
            "duality_gap": self.duality_gap,
            "converged_fraction": self.converged_fraction,
            "max_gap": self.max_gap,
        }
        out.update({prefix + k: v for k, v in optional.items() if v == v})
        return out


def _as_tensor(a: Any, what: str) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a
    if isinstance(a, np.ndarray):
        # torch shares numpy's memory, except read-only arrays or negative strides (a copy)
        if not a.flags.writeable or any(stride < 0 for stride in a.strides):
            a = a.copy()
        return torch.from_numpy(a)
    raise ShapeError(
        f"{what} must be a torch tensor or a numpy array, got {type(a).__name__}; "
        "convert with torch.as_tensor(...)."
    )


class Pursuit(Plugin[PursuitConfig]):
    """``codes = pursuit(x, dictionary)``: batched over signals, on any device.

    Subclasses implement :meth:`solve` against the operator interface and the array
    namespace of ``x``; this base class validates inputs (see the module docstring for the
    policy), handles empty batches and zero atoms, and does the backend hand-over.
    """

    #: True when the algorithm needs explicit atoms (``dictionary.matrix``), e.g. OMP.
    needs_matrix: bool = False
    info: PursuitInfo | None = None
    #: Properties of the dictionary operator the algorithm relies on, e.g. "circular" (a
    #: convolution diagonalised by the FFT); a model checks them against what it provides.
    operator_needs: ClassVar[frozenset[str]] = frozenset()
    #: The problem types this pursuit solves; its ``problem`` is one of them.
    solves: ClassVar[tuple[type[Problem], ...]] = ()

    def __init__(self, config: Any, problem: Problem | None = None) -> None:
        super().__init__(config)
        self.problem: Problem = self.problem_from(config) if problem is None else problem
        if self.solves and not isinstance(self.problem, self.solves):
            names = ", ".join(t.__name__ for t in self.solves) or "none declared"
            raise ConfigError(
                "pursuit",
                f"{type(self).__name__} cannot solve a {type(self.problem).__name__} problem",
                f"it solves: {names}",
            )

    @classmethod
    def problem_from(cls, config: Any) -> Problem:
        """The problem that a pursuit with ``config`` solves (built from ``lam``, ``k``...).

        Pursuits override it together with ``solves``. This default, for a pursuit that does
        not: the Lasso when its config has a numeric ``lam`` (and ``positive``), otherwise the
        data fit alone (LeastSquares)."""
        fields = vars(config)
        lam = fields.get("lam")
        if isinstance(lam, (int, float)) and not isinstance(lam, bool):
            return Lasso(float(lam), bool(fields.get("positive", False)))
        return LeastSquares()

    def with_problem(self, problem: Problem) -> Pursuit:
        """The same solver (same config) for another ``problem``, e.g. another λ."""
        return type(self)(self.config, problem)

    def __call__(self, x: Any, dictionary: LinearOperator | Any, init: Any = None) -> Any:
        numpy_in = isinstance(x, np.ndarray)
        x = _as_tensor(x, "signals")
        if not isinstance(dictionary, LinearOperator):
            dictionary = MatrixOperator(_as_tensor(dictionary, "dictionary"))
        if init is not None:
            init = _as_tensor(init, "init")
        self.validate(x, dictionary)
        out_dtype = x.dtype
        if x.dtype in HALF_PRECISION:
            x = x.float()
        op, live = self._prepare_matrix(dictionary, x)
        if init is not None:
            init = init.to(x.dtype)
        if x.shape[0] == 0:
            codes = x.new_zeros(dictionary.code_shape(x))
            self.info = PursuitInfo(iterations=0, rel_change=0.0)
        elif live is None:
            codes = self._solve(x, op, init)
        else:
            # zero atoms are left out of the solve; their coefficients are zero
            init_live = None if init is None else init[:, live]
            codes_live = self._solve(x, op, init_live)
            shape = dictionary.code_shape(x)
            codes = codes_live.new_zeros(shape).index_copy(1, live, codes_live)
        if codes.dtype != out_dtype:
            codes = codes.to(out_dtype)
        convergence.note(self.config.name or type(self).__name__, self.info, x.shape[0])
        return codes.detach().cpu().numpy() if numpy_in else codes

    def _solve(self, x: torch.Tensor, op: LinearOperator, init: Any) -> torch.Tensor:
        backend = self.config.backend
        if backend == "torch":
            codes: torch.Tensor = self.solve(x, op, init)
            return codes
        xb = to_backend(x, backend)
        ib = None if init is None else to_backend(init, backend)
        return to_torch(self.solve(xb, op.to_backend(backend), ib), like=x)

    @staticmethod
    def _prepare_matrix(
        op: LinearOperator, x: torch.Tensor
    ) -> tuple[LinearOperator, torch.Tensor | None]:
        """A matrix dictionary in the signals' dtype, without its all-zero atoms (and the
        indices of the atoms kept, or None when every atom is kept)."""
        if not isinstance(op, MatrixOperator) or not isinstance(op.matrix, torch.Tensor):
            return op, None
        matrix = op.matrix
        if matrix.ndim != 2:
            return op, None
        nonzero = (matrix != 0).any(dim=0)
        live = None if bool(nonzero.all()) else torch.nonzero(nonzero).reshape(-1)
        if live is not None:
            matrix = matrix[:, live]
        if matrix.dtype != x.dtype:
            matrix = matrix.to(x.dtype)
        if matrix is op.matrix:
            return op, None
        reduced = MatrixOperator(matrix)
        if live is None:
            reduced._lipschitz = op._lipschitz  # casting keeps ‖D‖² (computed in float64)
        return reduced, live

    def validate(self, x: torch.Tensor, op: LinearOperator) -> None:
        op.code_shape(x)  # raises ShapeError naming both shapes
        if self.needs_matrix:
            _ = op.matrix  # raises with the list of pursuits that work without one
        _check_values(x, "signals", "clean the data or check the preprocessing", plural=True)
        matrix = op.matrix if isinstance(op, MatrixOperator) else None
        if isinstance(matrix, torch.Tensor):
            _check_values(matrix, "the dictionary", "check how it was learned or loaded")

    @abstractmethod
    def solve(self, x: Any, op: LinearOperator, init: Any | None) -> Any:
        """Return the codes of ``x`` (arrays of the namespace of ``x``)."""


def _check_values(t: torch.Tensor, what: str, fix: str, plural: bool = False) -> None:
    """Signals and dictionaries alike: floating point and finite, or a message naming the fix."""
    pronoun, contains = ("them", "contain") if plural else ("it", "contains")
    if not torch.is_floating_point(t):
        raise ShapeError(
            f"{what} must be floating point, got {t.dtype}; convert {pronoun} to float32 or "
            "float64."
        )
    if not bool(torch.isfinite(t).all()):
        raise NonFiniteError(f"{what} {contains} NaN or Inf; {fix}.")
