"""Shared pieces of the neural benchmarks: λ, the CPU-budget callback, trainers, patches."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

from sparseland import build
from sparseland.operators import MatrixOperator
from sparseland.problems import Lasso
from sparseland.registry import get, make_config

RESULTS = Path(__file__).parent / "results"
LAM = 0.02  # λ for patches (DC removed, mean norm ≈ 0.22): FISTA codes have ≈ 11 of 128 non-zeros


class CpuBudget(L.Callback):
    """Stop training once this process has used ``seconds`` of CPU time (all its threads).

    ``anneal``: set Adam's learning rate after every step to lr·½(1 + cos(π·used/seconds)),
    the cosine decay of ``model.lr_schedule=cosine`` with the CPU budget as its horizon
    (the number of steps a budget buys depends on the machine)."""

    def __init__(self, seconds: float, anneal: bool = False) -> None:
        self.seconds, self.anneal = seconds, anneal
        self.start = time.process_time()
        self.used = 0.0
        self.base_lrs: list[float] = []

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.start = time.process_time()
        self.base_lrs = [group["lr"] for group in trainer.optimizers[0].param_groups]

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self.used = time.process_time() - self.start
        if self.used >= self.seconds:
            trainer.should_stop = True
        if self.anneal:
            factor = 0.5 * (1.0 + math.cos(math.pi * min(1.0, self.used / self.seconds)))
            for group, base in zip(trainer.optimizers[0].param_groups, self.base_lrs):
                group["lr"] = base * factor


def trainer(**options: Any) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        **options,
    )


def patches(batch_size: int = 256) -> Any:
    config = make_config(
        "dataset", "patches", n_train=20000, n_val=16, n_test=2000, batch_size=batch_size
    )
    dm = get("dataset", "patches").cls(config, build("preprocess", "dc"))
    dm.setup("fit")
    return dm


def objective(x: torch.Tensor, z: torch.Tensor, D: torch.Tensor) -> float:
    """The mean Lasso objective (λ = LAM): every encoder and pursuit is scored by it."""
    return float(Lasso(LAM).objective(x, MatrixOperator(D), z).mean())


def pursuit_objective(name: str, iters: int, x: torch.Tensor, D: torch.Tensor) -> float:
    solver = build("pursuit", name, lam=LAM, max_iter=iters, tol=0.0, compute_gap=False)
    return objective(x, solver(x, D), D)
