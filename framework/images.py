"""Pictures logged as artifacts: atoms as a grid."""

from __future__ import annotations

import math

import numpy as np
import torch


def atoms_grid(atoms: torch.Tensor, pad: int = 1, scale: int = 4) -> np.ndarray:
    """Tile ``atoms`` (k, h, w) into one grey image in [0, 1]; each atom scaled by its max |value|
    so that 0 is mid-grey, as in Olshausen and Field's figures."""
    a = atoms.detach().double().cpu()
    k, h, w = a.shape
    a = a / a.reshape(k, -1).abs().amax(dim=1).clamp_min(1e-12)[:, None, None]
    a = 0.5 + 0.5 * a
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    grid = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad))
    for i in range(k):
        r, c = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top : top + h, left : left + w] = a[i].numpy()
    return np.kron(grid, np.ones((scale, scale)))
