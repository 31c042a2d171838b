"""Hand-over for pursuits whose kernels are written in torch (gathers, argmax, triangular algebra).

``pursuit.backend=cupy`` still works for them: the CuPy arrays are viewed as CUDA tensors through
DLPack (zero-copy), solved, and handed back as CuPy arrays.
"""

from __future__ import annotations

import importlib.util
import itertools
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import torch

from sparseland.backend import to_backend, to_torch
from sparseland.errors import ShapeError, check
from sparseland.operators import LinearOperator


def as_torch(x: Any) -> tuple[torch.Tensor, str]:
    """``x`` as a torch tensor and the backend it came from (``torch`` or ``cupy``)."""
    if isinstance(x, torch.Tensor):
        return x, "torch"
    return to_torch(x), "cupy"


def back(x: torch.Tensor, backend: str) -> Any:
    return x if backend == "torch" else to_backend(x, backend)


def dense_matrix(op: LinearOperator, like: torch.Tensor) -> torch.Tensor:
    """The explicit atoms (m × k) as a tensor of ``like``'s dtype and device."""
    matrix = op.matrix
    tensor = matrix if isinstance(matrix, torch.Tensor) else to_torch(matrix)
    if tensor.ndim != 2:
        raise ShapeError(
            f"the dictionary must be a matrix of atoms (m × k), got {tuple(tensor.shape)}"
        )
    return tensor.to(dtype=like.dtype, device=like.device)


@contextmanager
def one_thread(device: torch.device) -> Iterator[None]:
    """Torch's CPU kernels on one thread inside the block (a no-op off the CPU).

    For loops of thousands of small batched kernels (a homotopy step, a small Cholesky) an
    intra-op thread team costs more in synchronisation than it saves, and on a loaded machine
    each parallel region waits for a descheduled thread: 10,000 patches took 54 s with 2 threads
    under load where 1 thread took 7 s."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def size_buckets(size: torch.Tensor, bucket: int, spare: int = 0) -> list[tuple[torch.Tensor, int]]:
    """Rows grouped by ⌈(size + spare) / bucket⌉, with that bucket number: batched solvers pad
    each group of similar working-set sizes to its own width."""
    index = (size + spare + bucket - 1) // bucket
    return [((index == b).nonzero()[:, 0], b) for b in torch.unique(index).tolist()]


MIN_SHARE = 256  # fewer signals than this per thread: one thread


def thread_shares(n: int, threads: int, device: torch.device) -> list[slice]:
    """``n`` signals split between up to ``threads`` CPU threads, at least MIN_SHARE each (one
    share off the CPU)."""
    shares = max(1, min(threads, n // MIN_SHARE)) if device.type == "cpu" else 1
    bounds = [n * i // shares for i in range(shares + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


def over_threads(run: Callable[[slice], None], n: int, threads: int, device: torch.device) -> None:
    """``run`` on each share of ``n`` signals (``thread_shares``), the shares in parallel
    threads: for kernels that release Python's interpreter lock (numba ``nogil``, torch)."""
    parts = thread_shares(n, threads, device)
    if len(parts) == 1:
        run(parts[0])
        return
    with ThreadPoolExecutor(len(parts)) as pool:
        list(pool.map(run, parts))


KERNELS = ("auto", "compiled", "batched")  # the choices of a pursuit's ``kernel`` option


def check_kernel(kernel: str) -> None:
    """A config's ``kernel`` is one of KERNELS (checked when the config is made)."""
    check(kernel in KERNELS, "kernel", f"must be one of {', '.join(KERNELS)}, got {kernel!r}")


def compiled_kernel(pursuit: str, kernel: str, device: torch.device) -> bool:
    """Whether ``kernel`` means a pursuit's numba-compiled CPU kernel for signals on ``device``:
    'auto' does on the CPU when numba is installed (and warns on the CPU when it is not);
    'compiled' off the CPU or without numba is refused with the fix."""
    numba = importlib.util.find_spec("numba") is not None
    if kernel == "auto":
        if device.type == "cpu" and not numba:
            warnings.warn(
                f"{pursuit}: numba is not installed, so it runs batched in torch (several times "
                "slower on the CPU); `pip install numba` for the compiled kernel",
                RuntimeWarning,
                stacklevel=5,
            )
        return device.type == "cpu" and numba
    check(
        kernel == "batched" or device.type == "cpu",
        "kernel",
        f"'compiled' runs on the CPU, but the signals are on {device}",
        "use kernel=auto or kernel=batched",
    )
    check(
        kernel == "batched" or numba,
        "kernel",
        "'compiled' needs numba, which is not installed",
        "`pip install numba`, or use kernel=batched",
    )
    return kernel == "compiled"
