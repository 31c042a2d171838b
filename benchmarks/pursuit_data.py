"""The pursuit benchmarks' problem and data: Lasso (λ = 0.1) on unit-norm 8×8 patches of
skimage.data.camera() with the DC removed, scored by the problem's own objective."""

from __future__ import annotations

from typing import Any

import numpy as np

from sparseland.operators import MatrixOperator
from sparseland.problems import Lasso

LAM = 0.1
PROBLEM = Lasso(LAM)  # every solver is scored by this problem's own objective


def camera_patches(n: int, seed: int = 0) -> np.ndarray:
    from skimage import data

    return image_patches(data.camera().astype(np.float64) / 255.0, n, seed)


def image_patches(image: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` random 8×8 patches of a grey image in [0, 1], DC removed, unit norm."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, image.shape[0] - 8, 4 * n)
    cols = rng.integers(0, image.shape[1] - 8, 4 * n)
    offsets = np.arange(8)
    patches = image[
        rows[:, None, None] + offsets[None, :, None], cols[:, None, None] + offsets[None, None, :]
    ].reshape(-1, 64)
    patches -= patches.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(patches, axis=1)
    patches = patches[norms > 1e-2][:n]  # flat patches have no direction to normalise
    return patches / np.linalg.norm(patches, axis=1, keepdims=True)


def objective(x: np.ndarray, d: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The Lasso objective per signal (numpy in, numpy out)."""
    value: np.ndarray = PROBLEM.objective(x, MatrixOperator(d), h)
    return value


def without(solvers: dict[str, Any], skip: tuple[str, ...]) -> dict[str, Any]:
    """The solvers whose name contains none of the ``skip`` strings."""
    return {name: v for name, v in solvers.items() if not any(part in name for part in skip)}
