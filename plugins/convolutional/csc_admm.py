"""Convolutional basis pursuit by ADMM in the Fourier domain (Wohlberg 2016).

min_z ½‖Σ_k d_k * z_k − s‖² + λ Σ_k ‖z_k‖₁     (optionally z ≥ 0)

Wohlberg, "Efficient algorithms for convolutional sparse representations", IEEE TIP 25(1),
2016, eq. (9)–(11) and §III-B: split z = y and iterate, with over-relaxation α (Boyd 2010 §3.4.3)
  x̂ = (D̂ᴴD̂ + ρI)⁻¹ (D̂ᴴŝ + ρ(ŷ − û))      per frequency ω
  x_r = α x + (1 − α) y
  y = S_{λ/ρ}(x_r + u),   u ← u + x_r − y.
At each ω, D̂(ω) is a C × K matrix; for C = 1 the K × K solve is a Sherman–Morrison update
(Wohlberg 2016, eq. 32):  (ρI + āaᵀ)⁻¹b = (b − ā (aᵀb) / (ρ + aᴴa)) / ρ;  for C > 1 the
Woodbury identity reduces it to a C × C solve. ρ adapts per image by residual balancing
(Boyd et al. 2011 §3.4.1, with Wohlberg 2015's automatic scaling τ = √(r/s)).
Needs the circular boundary (the only one that the FFT diagonalises exactly).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from framework import register_pursuit
from framework.errors import ConfigError, check
from framework.interfaces import Pursuit, PursuitConfig, PursuitInfo
from framework.lasso import lasso_duality_gap
from framework.operators import LinearOperator
from plugins.convolutional.conv_dictionary import ConvDictionary
from plugins.convolutional.fourier import irfft2, rfft2


@dataclass
class CscAdmmConfig(PursuitConfig):
    lam: float = 0.05
    max_iter: int = 200
    tol: float = 1e-4  # relative primal and dual residuals (Boyd et al. 2011 §3.3.1)
    rho: float = 0.0  # 0: 50λ + 1, sporco's default for ConvBPDN
    relax: float = 1.8  # over-relaxation α ∈ (0, 2)
    auto_rho: bool = True
    rho_period: int = 10
    positive: bool = False
    check_every: int = 5
    compute_gap: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.lam >= 0, "lam", f"must be >= 0, got {self.lam}")
        check(self.max_iter >= 1, "max_iter", f"must be >= 1, got {self.max_iter}")
        check(self.tol >= 0, "tol", f"must be >= 0, got {self.tol}")
        check(self.rho >= 0, "rho", f"must be >= 0 (0 picks 50λ + 1), got {self.rho}")
        check(0 < self.relax < 2, "relax", f"must be in (0, 2), got {self.relax}")
        check(self.rho_period >= 1, "rho_period", f"must be >= 1, got {self.rho_period}")
        check(self.check_every >= 1, "check_every", f"must be >= 1, got {self.check_every}")
        check(
            self.backend == "torch",
            "backend",
            "csc_admm runs on torch (CPU or GPU)",
            "use backend=torch",
        )


class FourierSolver:
    """x̂ = (D̂ᴴD̂ + ρI)⁻¹ (D̂ᴴŝ + ρ ŷ) at every frequency, for a per-image ρ (n, 1, 1, 1).

    Everything that depends on ρ only is prepared in :meth:`set_rho` (ρ changes every few
    iterations at most), so that an iteration costs one K-term product and two axpys.
    """

    def __init__(self, d_hat: torch.Tensor, dhs: torch.Tensor) -> None:
        self.d_hat, self.dhs = d_hat, dhs  # D̂ (K, C, U, V), D̂ᴴŝ (n, K, U, V)
        self.channels = int(d_hat.shape[1])
        if self.channels == 1:
            self.energy = d_hat[:, 0].abs().pow(2).sum(dim=0)  # aᴴa (U, V)
        else:  # D̂D̂ᴴ (U, V, C, C) for the Woodbury form
            self.gram = torch.einsum("kcuv,kduv->uvcd", d_hat, d_hat.conj())

    def set_rho(self, rho: torch.Tensor) -> None:
        self.rho = rho
        self.c = self.dhs / rho  # the solve is linear: x̂ = M(D̂ᴴŝ/ρ) + M(ŷ), M = ρ(D̂ᴴD̂ + ρI)⁻¹
        if self.channels == 1:
            a = self.d_hat[:, 0]
            self.a_scaled = a.conj() / (rho + self.energy)  # ā / (ρ + aᴴa)
            self.c = self.c - self.a_scaled * (a * self.c).sum(dim=1, keepdim=True)
        else:
            eye = torch.eye(self.channels, dtype=self.gram.dtype, device=rho.device)
            self.inverse = torch.linalg.inv(self.gram + rho.reshape(-1, 1, 1, 1, 1) * eye)
            self.c = self._woodbury(self.c)

    def _woodbury(self, b: torch.Tensor) -> torch.Tensor:
        """ρ(ρI + D̂ᴴD̂)⁻¹ b = b − D̂ᴴ(ρI + D̂D̂ᴴ)⁻¹D̂ b."""
        db = torch.einsum("kcuv,nkuv->nuvc", self.d_hat, b)
        w = torch.einsum("nuvcd,nuvd->nuvc", self.inverse, db)
        return b - torch.einsum("kcuv,nuvc->nkuv", self.d_hat.conj(), w)

    def __call__(self, y_hat: torch.Tensor) -> torch.Tensor:
        if self.channels == 1:  # Sherman–Morrison: b − ā (aᵀb) / (ρ + aᴴa), b = ŷ
            ab = torch.einsum("kuv,nkuv->nuv", self.d_hat[:, 0], y_hat).unsqueeze(1)
            return y_hat.add_(self.c).sub_(self.a_scaled * ab)
        return self._woodbury(y_hat).add_(self.c)


def _norms(a: torch.Tensor) -> torch.Tensor:
    return a.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1)


def csc_admm(
    s: torch.Tensor,
    op: ConvDictionary,
    config: CscAdmmConfig,
    init: torch.Tensor | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, PursuitInfo]:
    """Codes (n, K, H, W) of images ``s`` (n, C, H, W); ``callback(it, y)`` after each step."""
    grid = (int(s.shape[-2]), int(s.shape[-1]))
    d_hat = op.spectrum(grid, s)
    solve = FourierSolver(d_hat, op.analysis_fft(rfft2(s), d_hat))
    n = s.shape[0]
    rho0 = config.rho if config.rho > 0 else 50.0 * config.lam + 1.0
    rho = torch.full((n, 1, 1, 1), rho0, dtype=s.dtype, device=s.device)
    solve.set_rho(rho)
    y = torch.zeros(op.code_shape(s), dtype=s.dtype, device=s.device) if init is None else init
    u = torch.zeros_like(y)
    alpha = config.relax
    r_rel = s_rel = math.inf
    tiny = torch.finfo(s.dtype).tiny
    it = 0
    for it in range(1, config.max_iter + 1):
        x = irfft2(solve(rfft2(y - u)), s=grid)  # x̂ = (D̂ᴴD̂ + ρI)⁻¹(D̂ᴴŝ + ρ(ŷ − û))
        v = torch.lerp(y, x, alpha).add_(u)  # x_r + u, x_r = αx + (1 − α)y
        threshold = config.lam / rho
        y_old = y
        # y = S_{λ/ρ}(v) and u = v − y = clip(v, −λ/ρ, λ/ρ)  (non-negative: min(v, λ/ρ))
        u = torch.minimum(v, threshold) if config.positive else v.clamp(-threshold, threshold)
        y = v.sub_(u)
        if callback is not None:
            callback(it, y)
        period = it % config.rho_period == 0 and config.auto_rho
        if it % config.check_every == 0 or period or it == config.max_iter:
            primal = _norms(x - y) / torch.maximum(_norms(x), _norms(y)).clamp_min(tiny)
            dual = _norms(y - y_old) / _norms(u).clamp_min(tiny)
            r_rel, s_rel = float(primal.max()), float(dual.max())
            if r_rel < config.tol and s_rel < config.tol:
                break
            if period:  # residual balancing: scale ρ by τ = √(r/s) where they differ by > 1.2×
                ratio = primal / dual.clamp_min(tiny)
                tau = ratio.sqrt().clamp(1e-2, 1e2)
                tau = torch.where((ratio > 1.2) | (ratio < 1 / 1.2), tau, torch.ones_like(tau))
                rho = rho * tau
                u = u / tau
                solve.set_rho(rho)
    gap = math.nan
    if config.compute_gap:
        gap = float(lasso_duality_gap(s, op, y, config.lam, config.positive).mean())
    return y, PursuitInfo(iterations=it, rel_change=max(r_rel, s_rel), duality_gap=gap)


@register_pursuit("csc_admm", config=CscAdmmConfig)
class CscAdmm(Pursuit):
    """Convolutional BPDN by Fourier-domain ADMM; for ConvDictionary operators only."""

    config: CscAdmmConfig

    def solve(self, x: Any, op: LinearOperator, init: Any | None) -> Any:
        if not isinstance(op, ConvDictionary) or op.boundary != "circular":
            raise ConfigError(
                "pursuit",
                "csc_admm needs a convolutional dictionary with the circular boundary",
                "use model=csc with model.boundary=circular, or pursuit=fista for other operators",
            )
        codes, self.info = csc_admm(x, op, self.config, init)
        return codes
