"""Preprocessor ``example_standardize``: each coordinate of the signals to zero mean and unit
standard deviation, with the mean and the deviation fitted on the training signals only.

The same transform as scikit-learn's ``StandardScaler`` (population deviation; a constant
coordinate keeps the scale 1), on torch rows and with its fitted state in ``self.state``, so it
is saved with the run as safetensors and reloaded without unpickling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from sparseland import PluginConfig, register_preprocessor
from sparseland.interfaces import Preprocessor


@dataclass
class StandardizeConfig(PluginConfig):
    with_mean: bool = field(default=True, metadata={"help": "subtract each coordinate's mean"})
    with_std: bool = field(
        default=True, metadata={"help": "divide each coordinate by its standard deviation"}
    )


@register_preprocessor("example_standardize", config=StandardizeConfig)
class Standardize(Preprocessor):
    def fit(self, x: torch.Tensor) -> Standardize:
        """Fit on the training rows ``x`` (n, d)."""
        c = self.config
        mean = x.mean(dim=0) if c.with_mean else torch.zeros(x.shape[1], dtype=x.dtype)
        scale = x.std(dim=0, correction=0) if c.with_std else torch.ones(x.shape[1], dtype=x.dtype)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # constant coordinates
        self.state = {"mean": mean, "scale": scale}
        return self

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        mean, scale = self._fitted(x)
        return (x - mean) / scale

    def inverse_transform(self, y: torch.Tensor, raw: torch.Tensor | None = None) -> torch.Tensor:
        mean, scale = self._fitted(y)
        return y * scale + mean  # the same for every signal: ``raw`` is not needed

    def _fitted(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.state:
            raise RuntimeError(
                "example_standardize is not fitted: call fit(train) first (the dataset does "
                "it with fit_preprocessor)"
            )
        return (
            self.state["mean"].to(like.device, like.dtype),
            self.state["scale"].to(like.device, like.dtype),
        )
