"""Array backends: the same numerics run on torch tensors or CuPy arrays.

Algorithms are written once against the array-API namespace ``xp`` of their inputs
(``array_api_compat``); the switch between torch and CuPy is a zero-copy DLPack hand-over.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import array_api_compat
import torch

from sparseland.errors import BackendUnavailableError

BACKENDS = ("torch", "cupy")


def namespace(*arrays: Any) -> ModuleType:
    """The array-API namespace of ``arrays`` (torch, CuPy, or NumPy)."""
    namespace_: ModuleType = array_api_compat.array_namespace(*arrays)
    return namespace_


def require_cupy() -> ModuleType:
    try:
        import cupy
    except ImportError:
        raise BackendUnavailableError(
            "backend=cupy needs CuPy: install it with `pip install 'sparseland[cuda]'` "
            "on a machine with an NVIDIA GPU, or use backend=torch."
        ) from None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no device")
    except Exception:
        raise BackendUnavailableError(
            "backend=cupy needs a CUDA GPU and none is visible; use backend=torch."
        ) from None
    return cupy


def to_backend(tensor: torch.Tensor, backend: str) -> Any:
    """Hand a torch tensor to ``backend`` without copying (DLPack). CPU tensors move to the GPU."""
    if backend == "torch":
        return tensor
    if backend == "cupy":
        cupy = require_cupy()
        if not tensor.is_cuda:
            tensor = tensor.cuda()
        return cupy.from_dlpack(tensor.contiguous())
    raise BackendUnavailableError(f"Unknown backend '{backend}'; choose one of {BACKENDS}.")


def to_torch(array: Any, like: torch.Tensor | None = None) -> torch.Tensor:
    """Back to torch without copying; onto ``like``'s device when given."""
    out = array if isinstance(array, torch.Tensor) else torch.from_dlpack(array)
    return out if like is None else out.to(like.device)
