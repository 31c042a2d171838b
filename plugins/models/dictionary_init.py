"""Initial dictionaries: random Gaussian, random training signals, overcomplete DCT."""

from __future__ import annotations

import math

import torch

from sparseland.errors import ConfigError
from sparseland.operators import dct_dictionary

INITS = ("gaussian", "samples", "dct")


def initial_dictionary(
    kind: str, n_atoms: int, signals: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """(m, n_atoms) with unit-norm columns; ``signals`` are training rows (n, m)."""
    m = signals.shape[1]
    if kind == "gaussian":
        D = torch.randn(m, n_atoms, generator=generator)
    elif kind == "samples":
        idx = torch.randperm(signals.shape[0], generator=generator)[:n_atoms]
        D = signals[idx].T.clone().float()
        if D.shape[1] < n_atoms:  # fewer signals than atoms: pad with noise
            D = torch.cat([D, torch.randn(m, n_atoms - D.shape[1], generator=generator)], dim=1)
        D += 1e-6 * torch.randn(D.shape, generator=generator)  # no zero atom from a flat patch
    elif kind == "dct":
        side = math.isqrt(m)
        if side * side != m:
            raise ConfigError("model.init", f"dct needs square patches, got signals of size {m}")
        D = dct_dictionary(side, n_atoms)
    else:
        raise ConfigError(
            "model.init", f"'{kind}' is not an initialisation", f"choose one of {INITS}"
        )
    return D / D.norm(dim=0, keepdim=True).clamp_min(1e-12)
