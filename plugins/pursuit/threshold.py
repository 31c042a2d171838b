"""Thresholding: the simplest pursuit, one step on the correlations c = Dᵀx (Elad 2010, §5.1).

soft: h = S_λ(c) = sign(c)·max(|c| − λ, 0) (with positive=True: max(c − λ, 0), a ReLU with bias −λ;
      this is the forward pass of one layer of a CNN, Papyan, Romano and Elad 2017);
hard: h = c·1[|c| > λ], or with k > 0 the k largest |c_j| of each signal are kept (top-k).
Written once against the array namespace, batched over signals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sparseland import register_pursuit
from sparseland.backend import namespace
from sparseland.errors import ConfigError, check
from sparseland.interfaces import Pursuit, PursuitConfig, PursuitInfo
from sparseland.operators import LinearOperator
from sparseland.plugins.pursuit._torch import as_torch, back
from sparseland.plugins.pursuit.proximal_gradient import shrink


@dataclass
class ThresholdConfig(PursuitConfig):
    mode: str = "soft"  # soft | hard
    lam: float = 0.1  # threshold λ (soft, and hard when k == 0)
    k: int = 0  # hard mode only: keep the k largest |Dᵀx| per signal (0: threshold at λ)
    positive: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check(
            self.mode in ("soft", "hard"),
            "mode",
            f"'{self.mode}' is not a mode",
            "choose soft or hard",
        )
        check(self.lam >= 0, "lam", f"must be >= 0, got {self.lam}")
        check(self.k >= 0, "k", f"must be >= 0, got {self.k}", "0 thresholds at lam instead")
        check(
            self.k == 0 or self.mode == "hard", "k", "top-k needs mode=hard", "set mode=hard or k=0"
        )


@register_pursuit("threshold", config=ThresholdConfig)
class Threshold(Pursuit):
    def solve(self, x: Any, op: LinearOperator, init: Any | None) -> Any:
        xp = namespace(x)
        cfg: ThresholdConfig = self.config  # type: ignore[assignment]
        c = op.adjoint(x)
        if cfg.mode == "soft":
            codes = shrink(xp, c, cfg.lam, cfg.positive)
        elif cfg.k == 0:
            score = c if cfg.positive else xp.abs(c)
            codes = xp.where(score > cfg.lam, c, xp.zeros_like(c))
        else:
            codes = back(_top_k(as_torch(c)[0], cfg.k, cfg.positive), as_torch(c)[1])
        self.info = PursuitInfo(iterations=1, rel_change=0.0, converged_fraction=1.0, max_gap=0.0)
        return codes


def _top_k(c: Any, k: int, positive: bool) -> Any:
    flat = c.reshape(c.shape[0], -1)
    if k > flat.shape[1]:
        raise ConfigError(
            "k",
            f"{k} atoms asked of codes with {flat.shape[1]} entries",
            f"use k <= {flat.shape[1]}",
        )
    score = flat.clamp(min=0.0) if positive else flat.abs()
    index = score.topk(k, dim=1).indices
    kept = flat.gather(1, index)
    if positive:
        kept = kept.clamp(min=0.0)
    out = flat.new_zeros(flat.shape).scatter_(1, index, kept)
    return out.reshape(c.shape)
