"""What the learned sparse encoders (PSD, LISTA) share: the run's Lasso pursuit and its
problem, a starting dictionary and atoms as images."""

from __future__ import annotations

import math
from typing import Any

import torch

from sparseland.errors import ConfigError
from sparseland.interfaces import ModelContext, Pursuit, SparselandDataModule
from sparseland.interfaces.contracts import PatchGeometry
from sparseland.plugins.models.dictionary_init import initial_dictionary
from sparseland.problems import Lasso


def check_lasso_pursuit(model: str, spec: Any) -> None:
    """PSD and LISTA address the Lasso of the run's pursuit (its λ); refuse any other."""
    pursuit = spec["pursuit"]
    if pursuit is None or not isinstance(spec.problem, Lasso):
        name = "none" if pursuit is None else f"'{pursuit.name}'"
        raise ConfigError(
            "pursuit",
            f"model={model} needs a Lasso pursuit (with lam), got {name}",
            "use pursuit=fista or pursuit=ista; pursuit.lam is the model's λ",
        )


def lasso_pursuit(context: ModelContext) -> tuple[Pursuit, Lasso]:
    """The run's pursuit and the Lasso it solves."""
    pursuit = context.pursuit
    if pursuit is None or not isinstance(pursuit.problem, Lasso):
        raise ConfigError(
            "pursuit",
            "this model needs a Lasso pursuit (with lam)",
            "use pursuit=fista or pursuit=ista",
        )
    return pursuit, pursuit.problem


def training_rows(dm: SparselandDataModule, limit: int = 20000) -> torch.Tensor:
    """Up to ``limit`` training signals as rows (n, d), for initialising a dictionary."""
    splits = dm.splits
    if "train" in splits and hasattr(splits["train"], "x"):
        x = splits["train"].x[:limit]
    else:
        parts, count = [], 0
        for batch in dm.train_dataloader():
            parts.append(batch["x"])
            count += batch["x"].shape[0]
            if count >= limit:
                break
        x = torch.cat(parts)[:limit]
    return x.reshape(x.shape[0], -1).float()


def start_dictionary(kind: str, n_atoms: int, dm: SparselandDataModule, seed: int) -> torch.Tensor:
    """(m, n_atoms) unit-norm columns: dct, samples (training signals) or gaussian."""
    gen = torch.Generator().manual_seed(seed)
    if kind == "dct":
        m = math.prod(dm.signal_shape)
        return initial_dictionary(kind, n_atoms, torch.zeros(1, m), gen)
    return initial_dictionary(kind, n_atoms, training_rows(dm), gen)


def atoms_as_images(D: torch.Tensor, dm: SparselandDataModule) -> torch.Tensor | None:
    """Columns of ``D`` (m × k) as (k, h, w) images when the signals are square patches."""
    shape = dm.patch_shape if isinstance(dm, PatchGeometry) else None
    if shape is None:
        side = math.isqrt(D.shape[0])
        if side * side != D.shape[0]:
            return None
        shape = (side, side)
    return D.detach().T.reshape(-1, *shape)
