"""Model ``psd``: predictive sparse decomposition (Kavukcuoglu, Ranzato and LeCun 2008).

A dictionary D (unit-norm atoms) and a feed-forward encoder F are trained jointly on the
energy (eq. 3 of the paper, with the ½ of the Lasso convention used across Sparseland)

    E(x, z) = ½‖x − D z‖² + λ‖z‖₁ + (α/2)‖z − F(x)‖².

Each step infers z* = argmin_z E(x, z) with the run's Lasso pursuit started at F(x) (the
prediction term makes this a Lasso with the stacked dictionary [D; √α I] and signal
[x; √α F(x)]), then takes a gradient step on D and F with z* fixed. Afterwards F(x) alone
encodes. Encoders: F(x) = g ⊙ tanh(W x + b) (the paper's form) or the shrinkage
F(x) = S_θ(W x + b) with learned thresholds θ (as in Gregor and LeCun 2010).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sparseland import option, register_model
from sparseland.errors import check
from sparseland.interfaces import ModelContext, contracts
from sparseland.operators import MatrixOperator
from sparseland.plugins.models.dictionary_init import INITS
from sparseland.plugins.neural.blocks import NeuralConfig, NeuralModule, as_rows
from sparseland.plugins.neural.sparse_coding import (
    atoms_as_images,
    check_lasso_pursuit,
    lasso_pursuit,
    start_dictionary,
)
from sparseland.problems import soft_threshold

ENCODERS = ("shrink", "tanh")


@dataclass
class PsdConfig(NeuralConfig):
    n_atoms: int = option(128, "number of atoms of the dictionary")
    encoder: str = option("shrink", "the learned encoder: shrink (soft threshold of W x) or tanh")
    alpha: float = option(1.0, "weight of the prediction term")
    init: str = option("samples", "starting dictionary")
    seed: int = option(0, "seed of the dictionary and encoder initialisation")

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.n_atoms >= 1, "n_atoms", f"must be >= 1, got {self.n_atoms}")
        check(
            self.encoder in ENCODERS,
            "encoder",
            f"'{self.encoder}' is not an encoder",
            f"choose one of {ENCODERS}",
        )
        check(self.alpha >= 0, "alpha", f"must be >= 0, got {self.alpha}")
        check(
            self.init in INITS,
            "init",
            f"'{self.init}' is not an initialisation",
            f"choose one of {', '.join(INITS)}",
        )


class PredictiveEncoder(nn.Module):
    """F(x) = g ⊙ tanh(W x + b) or S_θ(W x + b); x and F(x) are rows."""

    def __init__(self, D: torch.Tensor, kind: str, lam: float) -> None:
        super().__init__()
        self.kind = kind
        k = D.shape[1]
        # Start from the thresholding pursuit: W = Dᵀ, θ = λ (a sensible, sparse first guess).
        self.weight = nn.Parameter(D.T.clone())
        self.bias = nn.Parameter(torch.zeros(k))
        self.gain = nn.Parameter(torch.ones(k))
        self.threshold = nn.Parameter(torch.full((k,), float(lam)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x @ self.weight.T + self.bias
        if self.kind == "tanh":
            return self.gain * torch.tanh(u)
        return soft_threshold(u, self.threshold.clamp_min(0.0))


@register_model("psd", config=PsdConfig)
# the NeuralModule skeleton (capability, compatibility check, init), as in dae, psd, lista
class PredictiveSparseDecomposition(NeuralModule):
    provides = (contracts.WithDictionary,)

    @staticmethod
    def check_compatible(spec: Any) -> None:
        check_lasso_pursuit("psd", spec)

    def __init__(self, config: PsdConfig, context: ModelContext) -> None:
        super().__init__(config, context)
        self.pursuit, self.problem = lasso_pursuit(context)
        D = start_dictionary(config.init, config.n_atoms, context.datamodule, config.seed)
        self.dictionary_weight = nn.Parameter(D.clone())
        self.register_buffer("dictionary_at_start", D.clone())
        self.encoder = PredictiveEncoder(D, config.encoder, self.problem.lam)

    @property
    def D(self) -> torch.Tensor:
        """Atoms as unit-norm columns (the normalisation is part of the model, so every
        gradient step stays on the constraint set)."""
        w = self.dictionary_weight
        return w / w.norm(dim=0, keepdim=True).clamp_min(1e-12)

    # -- the hooks tasks use
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(as_rows(x))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return codes @ self.D.detach().T

    def objective(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return self.problem.objective(as_rows(x), MatrixOperator(self.D.detach()), codes)

    def atoms(self) -> torch.Tensor | None:
        return atoms_as_images(self.D, self.context.datamodule)

    @torch.no_grad()
    def pursuit_codes(self, x: torch.Tensor) -> torch.Tensor:
        """The Lasso codes of ``x`` with the current dictionary (what F learns to predict)."""
        return self.pursuit(as_rows(x), self.D.detach())

    @torch.no_grad()
    def code_error(self, x: torch.Tensor) -> torch.Tensor:
        """‖F(x) − z_lasso‖ / ‖z_lasso‖ over the batch: how close F gets to the pursuit."""
        z = self.pursuit_codes(x)
        return (self.encode(x) - z).norm() / z.norm().clamp_min(1e-12)

    # -- training
    @torch.no_grad()
    def infer(self, x: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        """z* = argmin ½‖x − Dz‖² + λ‖z‖₁ + (α/2)‖z − F(x)‖², started at F(x)."""
        root = math.sqrt(self.config.alpha)
        k = prediction.shape[1]
        stacked = torch.cat([self.D, root * torch.eye(k, device=x.device, dtype=x.dtype)])
        return self.pursuit(torch.cat([x, root * prediction], dim=1), stacked, init=prediction)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        x = as_rows(batch["x"]).float()
        prediction = self.encoder(x)
        z = self.infer(x, prediction.detach())
        reconstruction = 0.5 * (x - z @ self.D.T).pow(2).sum(dim=1).mean()
        prediction_error = 0.5 * (z - prediction).pow(2).sum(dim=1).mean()
        loss = reconstruction + self.config.alpha * prediction_error
        energy = loss.detach() + self.problem.penalty(z).mean()
        relative = (z - prediction.detach()).norm() / z.norm().clamp_min(1e-12)
        return loss, {
            "energy": energy,
            "reconstruction": reconstruction.detach(),
            "prediction_error": relative,
        }

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)
        x = batch["x"]
        self.log_dict(
            {
                "val/code_error": self.code_error(x),
                "val/objective": self.objective(x, self.encode(x)).mean(),
            }
        )
