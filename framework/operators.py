"""Dictionaries are linear operators: ``D h``, ``Dᵀ x`` and a Lipschitz constant ‖D‖².

Pursuits are written against this small interface, so a matrix of atoms, a bank of
convolution filters or a chain of strided convolutional dictionaries gets every pursuit for
free. Conventions: a batch of signals is ``(n, *signal_shape)`` and its codes are
``(n, *code_shape)``; for a matrix dictionary ``D`` of shape ``(m, k)`` (atoms are columns),
``forward(h) = h Dᵀ`` and ``adjoint(x) = x D``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import nn

from sparseland.backend import namespace


class LinearOperator(ABC):
    _lipschitz: float | None = None  # cached ‖D‖²

    @abstractmethod
    def forward(self, codes: Any) -> Any:
        """Synthesis ``D h``."""

    @abstractmethod
    def adjoint(self, signals: Any) -> Any:
        """Analysis ``Dᵀ x``."""

    @abstractmethod
    def code_shape(self, signals: Any) -> tuple[int, ...]:
        """Shape of the codes of a batch of ``signals`` (raises ShapeError when they do not fit)."""

    @abstractmethod
    def to_backend(self, backend: str) -> LinearOperator:
        """The same operator over another array backend (zero-copy)."""

    @property
    def matrix(self) -> Any:
        """Explicit atoms as columns, for algorithms that need them (OMP, K-SVD)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no explicit matrix of atoms; "
            "use a pursuit that needs only D h and Dᵀ x (ista, fista)."
        )

    def lipschitz(self, like: Any, n_iter: int = 100, tol: float = 1e-7) -> float:
        """‖D‖² (largest eigenvalue of DᵀD) by power iteration on a code-shaped vector.

        A 1 % margin keeps 1/L a safe gradient step although power iteration
        approaches ‖D‖² from below.
        """
        if self._lipschitz is not None:
            return self._lipschitz
        xp = namespace(like)
        shape = self.code_shape(like[:1])
        gen = torch.Generator().manual_seed(0)
        v0 = torch.randn(shape, generator=gen, dtype=torch.float64).numpy()
        v = xp.asarray(v0, dtype=like.dtype, device=array_device(like))
        estimate = 0.0
        for _ in range(n_iter):
            w = self.adjoint(self.forward(v))
            norm = float(xp.linalg.vector_norm(xp.reshape(w, (-1,))))
            if norm == 0.0:
                break
            v = w / norm
            if abs(norm - estimate) <= tol * norm:
                estimate = norm
                break
            estimate = norm
        self._lipschitz = estimate * 1.01
        return self._lipschitz


def array_device(x: Any) -> Any:
    import array_api_compat

    return array_api_compat.device(x)


class MatrixOperator(LinearOperator):
    """A dictionary given by its atoms as the columns of ``matrix`` (m × k), any backend."""

    def __init__(self, matrix: Any) -> None:
        self._matrix = matrix
        self._lipschitz = None

    @property
    def matrix(self) -> Any:
        return self._matrix

    @property
    # shape properties, alike in every operator (conv_dictionary.py's too)
    def signal_dim(self) -> int:
        return int(self._matrix.shape[0])

    @property
    def n_atoms(self) -> int:
        return int(self._matrix.shape[1])

    def forward(self, codes: Any) -> Any:
        return codes @ self._matrix.T

    def adjoint(self, signals: Any) -> Any:
        return signals @ self._matrix

    def code_shape(self, signals: Any) -> tuple[int, ...]:
        from sparseland.errors import ShapeError

        if signals.ndim != 2 or signals.shape[1] != self.signal_dim:
            raise ShapeError(
                f"signals of shape {tuple(signals.shape)} do not fit a dictionary of "
                f"{self.signal_dim}-dimensional atoms: expected (n, {self.signal_dim}); "
                "flatten patches to rows or use a dictionary of the right size."
            )
        return (int(signals.shape[0]), self.n_atoms)

    def gram(self) -> Any:
        return self._matrix.T @ self._matrix

    def lipschitz(self, like: Any = None, n_iter: int = 100, tol: float = 1e-7) -> float:
        """For a matrix ‖D‖₂² exactly (the largest eigenvalue of the k×k or m×m Gram)."""
        if self._lipschitz is None:
            m = torch.as_tensor(_to_numpy(self._matrix), dtype=torch.float64)
            small = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
            self._lipschitz = float(torch.linalg.eigvalsh(small)[-1])
        return self._lipschitz

    def to_backend(self, backend: str) -> MatrixOperator:
        from sparseland.backend import to_backend

        if not isinstance(self._matrix, torch.Tensor):
            return self
        op = MatrixOperator(to_backend(self._matrix, backend))
        op._lipschitz = self._lipschitz
        return op


def _to_numpy(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if hasattr(x, "get"):  # CuPy
        return x.get()
    return x


class LinearDictionary(nn.Module):
    """A decoder ``x = D h`` with unit-norm atoms (the columns of ``weight``, m × k)."""

    def __init__(self, weight: torch.Tensor, trainable: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.clone(), requires_grad=trainable)
        self.normalize_()

    @property
    def operator(self) -> MatrixOperator:
        return MatrixOperator(self.weight if self.weight.requires_grad else self.weight.detach())

    @torch.no_grad()
    def normalize_(self) -> None:
        norms = self.weight.norm(dim=0, keepdim=True).clamp_min(1e-12)
        self.weight.div_(norms)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return codes @ self.weight.T


def dct_dictionary(patch_size: int, n_atoms: int) -> torch.Tensor:
    """Overcomplete separable 2-D DCT dictionary (Elad and Aharon 2006), columns unit-norm."""
    per_axis = math.ceil(math.sqrt(n_atoms))
    n = torch.arange(patch_size, dtype=torch.float64)
    k = torch.arange(per_axis, dtype=torch.float64)
    basis = torch.cos(torch.outer(n, k) * math.pi / per_axis)  # patch_size × per_axis
    basis[:, 1:] -= basis[:, 1:].mean(dim=0, keepdim=True)
    atoms = torch.kron(basis, basis)
    atoms = atoms / atoms.norm(dim=0, keepdim=True)
    return atoms[:, :n_atoms].float()
