"""``python benchmarks/pursuit.py --fista-overhead``: Sparseland's FISTA call against the same
iterations written as a plain torch loop (results in benchmarks/results/fista_overhead.md)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from harness import timed
from pursuit_data import LAM, camera_patches

from sparseland import build
from sparseland.momentum import next_momentum
from sparseland.operators import dct_dictionary
from sparseland.problems import Lasso


def plain_fista(x: torch.Tensor, d: torch.Tensor, lam: float, iters: int) -> torch.Tensor:
    """The reference for the overhead: FISTA as a plain torch loop (Beck and Teboulle 2009),
    with the problem's soft threshold and the one momentum rule."""
    lipschitz = torch.linalg.matrix_norm(d, ord=2) ** 2
    problem = Lasso(lam)
    correlation = x @ d
    h = torch.zeros(x.shape[0], d.shape[1], dtype=x.dtype, device=x.device)
    y, t = h, 1.0
    for _ in range(iters):
        z = y - ((y @ d.T) @ d - correlation) / lipschitz
        h_new = problem.prox(z, 1.0 / lipschitz)
        t, beta = next_momentum(t)
        y = h_new + beta * (h_new - h)
        h = h_new
    return h


def fista_overhead(
    n: int = 10_000, iters: int = 100, repeats: int = 7, threads: int = 2, out: Path | None = None
) -> dict[str, Any]:
    """Sparseland's FISTA call against :func:`plain_fista`, same problem and iterations:
    median wall time over interleaved repeats, and minor page faults per iteration."""
    import resource
    import statistics

    torch.set_num_threads(threads)
    x = torch.tensor(camera_patches(n), dtype=torch.float32)
    d = dct_dictionary(8, 256)
    pursuit = build(
        "pursuit", "fista", lam=LAM, max_iter=iters, tol=0.0, compute_gap=False, check_every=10**6
    )
    runs: dict[str, Callable[[], torch.Tensor]] = {
        "sparseland fista": lambda: pursuit(x, d),
        "plain torch loop": lambda: plain_fista(x, d, LAM, iters),
    }
    agreement = float((runs["sparseland fista"]() - runs["plain torch loop"]()).abs().max())
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    faults: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            seconds[name].append(timed(run)[1])
            faults[name].append(
                (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / iters
            )
    median = {name: statistics.median(v) for name, v in seconds.items()}
    result = {
        "n_signals": n,
        "iterations": iters,
        "repeats": repeats,
        "threads": threads,
        "load_average": round(os.getloadavg()[0], 1),
        "max_abs_difference": agreement,
        "median_seconds": median,
        "all_seconds": seconds,
        "median_page_faults_per_iteration": {k: statistics.median(v) for k, v in faults.items()},
        "ratio": median["sparseland fista"] / median["plain torch loop"],
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "fista_overhead.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return result
