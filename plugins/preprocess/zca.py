"""ZCA whitening (Bell and Sejnowski 1997), optionally after DC removal.

With the covariance C = U Λ Uᵀ of the training signals, W = U (Λ + ε)^{-1/2} Uᵀ and
y = (x − μ) W. ZCA is the whitening closest to the identity, so whitened patches still look
like patches; ε keeps noise directions (tiny eigenvalues) from being blown up. With ε = 0
the output covariance is exactly the identity on the span of the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparseland import PluginConfig, option, register_preprocessor
from sparseland.errors import check
from sparseland.interfaces import Preprocessor


@dataclass
class ZcaConfig(PluginConfig):
    eps: float = option(
        1e-2, "ε added to the eigenvalues: keeps noise directions from being blown up"
    )
    remove_dc: bool = option(True, "subtract each signal's mean first")

    def __post_init__(self) -> None:
        check(self.eps >= 0, "eps", f"must be >= 0, got {self.eps}")


@register_preprocessor("zca", config=ZcaConfig)
class ZcaWhitening(Preprocessor):
    def _centre(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(dim=1, keepdim=True) if self.config.remove_dc else x

    def fit(self, x: torch.Tensor) -> ZcaWhitening:
        xc = self._centre(x).double()
        mean = xc.mean(dim=0)
        cov = torch.cov((xc - mean).T, correction=0)
        evals, evecs = torch.linalg.eigh(cov)
        evals = evals.clamp_min(0.0) + self.config.eps
        keep = evals > 1e-12 * evals.max()  # drop exact null directions (DC after its removal)
        inv_sqrt = torch.where(keep, evals.rsqrt(), torch.zeros_like(evals))
        sqrt = torch.where(keep, evals.sqrt(), torch.zeros_like(evals))
        self.state = {
            "mean": mean,
            "whiten": (evecs * inv_sqrt) @ evecs.T,
            "colour": (evecs * sqrt) @ evecs.T,
        }
        self.state = {k: v.to(x.dtype) for k, v in self.state.items()}
        return self

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return (self._centre(x) - self.state["mean"]) @ self.state["whiten"]

    def inverse_transform(self, y: torch.Tensor, raw: torch.Tensor | None = None) -> torch.Tensor:
        x = y @ self.state["colour"] + self.state["mean"]
        if self.config.remove_dc and raw is not None:
            x = x + raw.mean(dim=1, keepdim=True)
        return x
