"""The exact Lasso on data it was not developed on, for benchmarks/pursuit.py: 8×8 patches of
four other scikit-image pictures, the Lasso and its non-negative variant, Sparseland's
``active_set`` against SPAMS's LARS side by side (same threads, medians over repeats)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from harness import side_by_side
from pursuit_data import LAM, image_patches

from sparseland import build
from sparseland.operators import MatrixOperator
from sparseland.problems import Lasso

IMAGES = ("astronaut", "coins", "moon", "brick")


def grey(name: str) -> np.ndarray:
    from skimage import color, data

    image = getattr(data, name)()
    image = color.rgb2gray(image) if image.ndim == 3 else image / 255.0
    return np.asarray(image, dtype=np.float64)


def max_relative_gap(x: torch.Tensor, d: torch.Tensor, h: np.ndarray, positive: bool) -> float:
    primal, gap, _ = Lasso(LAM, positive).objective_and_gap(x, MatrixOperator(d), torch.tensor(h))
    return float((gap / primal).max())


def solvers(
    ours: Any, x: np.ndarray, d: np.ndarray, positive: bool, threads: int
) -> dict[str, Callable[[], np.ndarray]]:
    """Sparseland's exact Lasso and SPAMS's LARS on the same float64 problem."""
    import spams

    xt, dt = torch.tensor(x), torch.tensor(d)
    xf, df = np.asfortranarray(x.T), np.asfortranarray(d)
    return {
        "active_set": lambda: ours(xt, dt).numpy(),
        "spams": lambda: (
            spams.lasso(xf, D=df, lambda1=LAM, mode=2, pos=positive, numThreads=threads).toarray().T
        ),
    }


def exact_splits(n: int, d: np.ndarray, threads: int, repeats: int) -> list[dict[str, Any]]:
    """One row per image and variant: both medians, their ratio and both worst gaps."""
    dt = torch.tensor(d)
    rows = []
    for positive in (False, True):
        ours = build("pursuit", "active_set", lam=LAM, positive=positive)
        for image in IMAGES:
            x = image_patches(grey(image), n, seed=1)
            xt = torch.tensor(x)
            runs = solvers(ours, x, d, positive, threads)
            outputs, times = side_by_side(runs, repeats)
            median = {name: float(np.median(t)) for name, t in times.items()}
            rows.append(
                {
                    "image": image,
                    "positive": positive,
                    "active_set_s": median["active_set"],
                    "spams_s": median["spams"],
                    "ratio": median["active_set"] / median["spams"],
                    "max_rel_gap": {
                        name: max_relative_gap(xt, dt, h, positive) for name, h in outputs.items()
                    },
                }
            )
            print(f"  {image:10s} positive={positive!s:5s} {rows[-1]['ratio']:.2f}× SPAMS")
    return rows


def splits_section(rows: list[dict[str, Any]] | None, threads: int | None) -> list[str]:
    if not rows:
        return []
    lines = [
        "",
        f"## Exact Lasso on other images, {threads} threads each, float64",
        "",
        "10,000 8×8 patches of each picture (none used to develop the solver), the Lasso and "
        "the non-negative Lasso (SPAMS `pos=True`), λ = 0.1; medians over the same rounds as "
        "above, the two solvers taking turns.",
        "",
        "| image | h ≥ 0 | active_set (s) | SPAMS (s) | ratio | max gap/P active_set | "
        "max gap/P SPAMS |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        gaps = row["max_rel_gap"]
        lines.append(
            f"| {row['image']} | {'yes' if row['positive'] else 'no'} | "
            f"{row['active_set_s']:.3f} | {row['spams_s']:.3f} | {row['ratio']:.2f}× | "
            f"{gaps['active_set']:.1e} | {gaps['spams']:.1e} |"
        )
    return lines
