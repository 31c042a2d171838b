"""Pursuits for the multi-layer convolutional model (ML-CSC), differentiable and batched.

Each returns the estimates of every layer [γ₁, …, γ_L]; T_τ is the soft threshold, or with
``positive`` the non-negative one T⁺_τ(v) = ReLU(v − τ) (a ReLU with bias −τ).
Thresholds τ_i are floats or per-channel tensors (K_i,); steps s_i are floats.

* Layered thresholding (Papyan, Romano and Elad 2017, eq. 9): γ_i = T_{τ_i}(D_iᵀ γ_{i−1}),
  γ₀ = x. With τ = −b this *is* the forward pass of a CNN, conv → bias → ReLU.
* Layered basis pursuit (Papyan et al. 2017, eq. 13): γ_i = argmin ½‖γ_{i−1} − D_i γ‖² +
  λ_i‖γ‖₁, layer after layer, each by ``n_iter`` ISTA/FISTA steps.
* ML-ISTA / ML-FISTA (Sulam, Aberdam, Beck and Elad 2019, Algorithms 1–2) for the multi-layer
  basis pursuit (ML-BP) problem
      min_{γ_L} ½‖x − D_(1,L) γ_L‖² + Σ_{i<L} λ_i ‖D_(i+1,L) γ_L‖₁ + λ_L ‖γ_L‖₁.
  One iteration: back-project z_i = D_(i+1,L) γ_L, then sweep forward with proximal-gradient
  steps, carrying the gradient of the layers above as g_i = (z_i − γ_i')/s_i:
      γ₁' = T_{s₁λ₁}(z₁ − s₁ D₁ᵀ(D₁z₁ − x)),   γ_i' = T_{s_iλ_i}(z_i − s_i D_iᵀ g_{i−1}),
      γ_L ← T_{s_Lλ_L}(γ_L − s_L D_Lᵀ g_{L−1}).
  Its fixed points satisfy the ML-BP optimality conditions up to O(s_i) for i < L (the inner
  steps play the part of the Moreau smoothing parameter μ of the paper), so ``smoothing`` < 1
  tightens them. From γ_L = 0 the first iteration with all s_i = 1 is layered thresholding,
  so ``unfoldings`` counts the iterations after that CNN pass, as in Sulam et al.'s code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sparseland.momentum import next_momentum
from sparseland.plugins.convolutional.multilayer import MultiLayerConvDictionary
from sparseland.problems import soft_threshold

Threshold = float | torch.Tensor


def threshold(v: torch.Tensor, tau: Threshold, positive: bool) -> torch.Tensor:
    """T_τ(v), with a per-channel τ broadcast over the channels of v (n, K, H, W)."""
    if isinstance(tau, torch.Tensor):
        tau = tau.reshape(1, -1, 1, 1)
    return soft_threshold(v, tau, positive)


def layered_thresholding(
    x: torch.Tensor,
    op: MultiLayerConvDictionary,
    taus: Sequence[Threshold],
    positive: bool,
    steps: Sequence[float] | None = None,
) -> list[torch.Tensor]:
    """γ_i = T_{τ_i}((s_i/s_{i−1}) D_iᵀ γ_{i−1}), s₀ = 1: the first ML-ISTA iteration from 0
    with steps s_i (all 1 without ``steps``: the CNN forward pass)."""
    layers, gamma, previous = [], x, 1.0
    for i in range(1, op.n_layers + 1):
        correlation = op.layer_adjoint(i, gamma)
        if steps is not None:
            correlation = (steps[i - 1] / previous) * correlation
            previous = steps[i - 1]
        gamma = threshold(correlation, taus[i - 1], positive)
        layers.append(gamma)
    return layers


def layered_bp(
    x: torch.Tensor,
    op: MultiLayerConvDictionary,
    taus: Sequence[Threshold],
    steps: Sequence[float],
    n_iter: int,
    positive: bool,
    accelerate: bool = True,
) -> list[torch.Tensor]:
    """Each layer by (F)ISTA: γ ← T_{τ_i}(y − s_i D_iᵀ(D_i y − γ_{i−1})), τ_i = s_i λ_i."""
    layers, signal = [], x
    for i in range(1, op.n_layers + 1):
        s = steps[i - 1]
        correlation = op.layer_adjoint(i, signal)
        gamma = threshold(s * correlation, taus[i - 1], positive)  # first step from 0
        y, t = gamma, 1.0
        for _ in range(n_iter - 1):
            new = threshold(
                y - s * (op.layer_adjoint(i, op.layer_forward(i, y)) - correlation),
                taus[i - 1],
                positive,
            )
            if accelerate:
                t, beta = next_momentum(t)
                y = new + beta * (new - gamma)
            else:
                y = new
            gamma = new
        layers.append(gamma)
        signal = gamma
    return layers


# the same arguments as layered_bp: the two are interchangeable solvers of one problem
def ml_ista(
    x: torch.Tensor,
    op: MultiLayerConvDictionary,
    taus: Sequence[Threshold],
    steps: Sequence[float],
    unfoldings: int,
    positive: bool,
    accelerate: bool = False,
) -> list[torch.Tensor]:
    n_layers = op.n_layers
    gamma = torch.zeros(op.code_shape(x), dtype=x.dtype, device=x.device)
    previous, t = gamma, 1.0
    layers: list[torch.Tensor] = []
    for k in range(unfoldings + 1):
        point = gamma
        if accelerate and k > 0:  # FISTA extrapolation on the deepest code (Algorithm 2)
            t, beta = next_momentum(t)
            point = gamma + beta * (gamma - previous)
        z = [point]  # back-projections z_L = γ_L, z_{i−1} = D_i z_i
        for i in range(n_layers, 1, -1):
            z.insert(0, op.layer_forward(i, z[0]))
        layers = []
        g = op.layer_forward(1, z[0]) - x  # D₁z₁ − x: the gradient of the data term
        for i in range(1, n_layers + 1):
            s = steps[i - 1]
            new = threshold(z[i - 1] - s * op.layer_adjoint(i, g), taus[i - 1], positive)
            layers.append(new)
            if i < n_layers:
                g = (z[i - 1] - new) / s
        previous, gamma = gamma, layers[-1]
    return layers


def default_steps(op: MultiLayerConvDictionary, smoothing: float = 1.0) -> list[float]:
    """s_i = c^{[i<L]} / Π_{j≤i} ‖D_j‖²: each layer's step for the gradient it receives, whose
    Lipschitz constant is ‖D_i‖²/s_{i−1}; c = ``smoothing`` shrinks the inner (μ) steps."""
    steps, scale = [], 1.0
    for i in range(1, op.n_layers + 1):
        scale = scale / op.layer_lipschitz(i)
        steps.append(scale * (smoothing if i < op.n_layers else 1.0))
        if i < op.n_layers:
            scale = steps[-1]
    return steps
