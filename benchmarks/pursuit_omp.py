"""OMP (k = 8) timings for benchmarks/pursuit.py: Sparseland and SPAMS in float32 and float64,
and scikit-learn, taking turns within each round."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from harness import timed
from pursuit_data import without

from sparseland import build


def omp_rows(
    x: np.ndarray,
    d: np.ndarray,
    threads: int,
    dtype: torch.dtype,
    device: str = "cpu",
    skip: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """OMP with k = 8 in float32 and float64 (Sparseland and SPAMS), and scikit-learn (float64).

    Every solver returns dense codes in its own precision. The solvers take turns within each
    round, and each keeps its best round, so a load change on the machine hits all of them.
    ``dtype`` is unused: both precisions are always measured.
    """
    import spams
    from sklearn.decomposition import sparse_encode

    def sparseland(precision: torch.dtype) -> Callable[[], np.ndarray]:
        xt = torch.tensor(x, dtype=precision, device=device)
        dt = torch.tensor(d, dtype=precision, device=device)
        return lambda: build("pursuit", "omp", k=8)(xt, dt).cpu().numpy()

    def spams_omp(precision: type) -> Callable[[], np.ndarray]:
        xf: np.ndarray = np.asfortranarray(x.T, dtype=precision)
        df: np.ndarray = np.asfortranarray(d, dtype=precision)
        # eps and lambda1 explicit: left unset, spams-bin 2.6's float32 OMP now and then
        # returns all-zero codes (an uninitialised tolerance, it seems).
        return lambda: (
            spams.omp(xf, D=df, L=8, eps=0.0, lambda1=0.0, numThreads=threads).toarray().T
        )

    runs: dict[str, Callable[[], np.ndarray]] = {
        "sparseland omp (float32)": sparseland(torch.float32),
        "sparseland omp (float64)": sparseland(torch.float64),
        "spams omp (float32)": spams_omp(np.float32),
        "spams omp (float64)": spams_omp(np.float64),
        "sklearn omp (float64)": lambda: sparse_encode(
            x, d.T, algorithm="omp", n_nonzero_coefs=8, n_jobs=threads
        ),
    }
    runs = without(runs, skip)
    codes = {name: fn() for name, fn in runs.items()}  # warm-up (imports, thread pools)
    best = dict.fromkeys(runs, math.inf)
    for _ in range(7):
        for name, fn in runs.items():
            if best[name] > 1.0 and best[name] < math.inf:
                continue  # slow solvers: one timed run is enough
            codes[name], seconds = timed(fn)
            best[name] = min(best[name], seconds)
    rows = []
    for name in runs:
        h = codes[name].astype(np.float64)
        residual = np.linalg.norm(x - h @ d.T, axis=1) / np.linalg.norm(x, axis=1)
        rows.append(
            {
                "name": name,
                "seconds": best[name],
                "mean_rel_residual": float(residual.mean()),
                "max_nnz": int((h != 0).sum(1).max()),
            }
        )
        print(f"  {name:28s} {best[name]:8.3f} s  residual {residual.mean():.4f}", flush=True)
    return rows
