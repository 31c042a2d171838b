"""Pursuit: infer the codes of a batch of signals for a fixed dictionary."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import torch

from sparseland.backend import BACKENDS, to_backend, to_torch
from sparseland.errors import NonFiniteError, ShapeError, check
from sparseland.interfaces.plugin import Plugin
from sparseland.operators import LinearOperator, MatrixOperator
from sparseland.registry import PluginConfig


@dataclass
class PursuitConfig(PluginConfig):
    backend: str = "torch"

    def __post_init__(self) -> None:
        check(
            self.backend in BACKENDS,
            "backend",
            f"'{self.backend}' is not a backend",
            f"choose one of {', '.join(BACKENDS)}",
        )


@dataclass
class PursuitInfo:
    """What a pursuit did on its last call (logged by the model)."""

    iterations: int
    rel_change: float = float("nan")
    duality_gap: float = float("nan")  # mean over signals, Lasso solvers only

    def as_metrics(self, prefix: str = "pursuit/") -> dict[str, float]:
        out = {
            f"{prefix}iterations": float(self.iterations),
            f"{prefix}rel_change": self.rel_change,
        }
        if self.duality_gap == self.duality_gap:
            out[f"{prefix}duality_gap"] = self.duality_gap
        return out


class Pursuit(Plugin[PursuitConfig]):
    """``codes = pursuit(x, dictionary)``: batched over signals, on any device.

    Subclasses implement :meth:`solve` against the operator interface and the array
    namespace of ``x``; this base class validates inputs and does the backend hand-over.
    """

    #: True when the algorithm needs explicit atoms (``dictionary.matrix``), e.g. OMP.
    needs_matrix: bool = False
    info: PursuitInfo | None = None

    def __call__(
        self, x: torch.Tensor, dictionary: LinearOperator | torch.Tensor, init: Any = None
    ) -> torch.Tensor:
        op = MatrixOperator(dictionary) if isinstance(dictionary, torch.Tensor) else dictionary
        self.validate(x, op)
        backend = self.config.backend
        if backend == "torch":
            return self.solve(x, op, init)
        xb = to_backend(x, backend)
        ib = None if init is None else to_backend(init, backend)
        return to_torch(self.solve(xb, op.to_backend(backend), ib), like=x)

    def validate(self, x: torch.Tensor, op: LinearOperator) -> None:
        op.code_shape(x)  # raises ShapeError naming both shapes
        if self.needs_matrix:
            _ = op.matrix  # raises with the list of pursuits that work without one
        if not torch.is_floating_point(x):
            raise ShapeError(f"signals must be floating point, got {x.dtype}; call x.float().")
        if not bool(torch.isfinite(x).all()):
            raise NonFiniteError(
                "signals contain NaN or Inf; clean the data or check the preprocessing."
            )

    @abstractmethod
    def solve(self, x: Any, op: LinearOperator, init: Any | None) -> Any:
        """Return the codes of ``x`` (arrays of the namespace of ``x``)."""
