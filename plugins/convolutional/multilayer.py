"""A multi-layer convolutional dictionary: x = D₁ γ₁, γ₁ = D₂ γ₂, …, γ_{L−1} = D_L γ_L.

ML-CSC (Papyan, Romano and Elad 2017, eq. 3): every D_i is a strided convolutional dictionary.
Layer i has weights W_i (K_i, K_{i−1}, h_i, w_i), a stride and a zero padding, with
    D_iᵀ γ_{i−1} = conv2d(γ_{i−1}, W_i, stride, padding)       (analysis, the CNN's layer)
    D_i  γ_i     = conv_transpose2d(γ_i, W_i, stride, padding)  (synthesis, its exact adjoint)
so W_i[k] is the k-th atom of D_i. Zero padding p_i: codes exist where the (strided) filter
overlaps the input; p = 0 is the 'valid' boundary, p = h − 1 the 'full' one. The operator as a
whole is D_(1,L) = D₁ ⋯ D_L with codes γ_L, so ista/fista run on it unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from sparseland.errors import BackendUnavailableError, ShapeError
from sparseland.operators import LinearOperator


def conv_output(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class MultiLayerConvDictionary(LinearOperator):
    def __init__(
        self,
        weights: list[torch.Tensor],
        strides: list[int],
        paddings: list[int],
        signal_shape: tuple[int, int, int],
    ) -> None:
        if not (len(weights) == len(strides) == len(paddings)) or not weights:
            raise ShapeError("need one stride and one padding per layer, and at least one layer")
        self.weights, self.strides, self.paddings = weights, strides, paddings
        self.shapes: list[tuple[int, int, int]] = [tuple(signal_shape)]  # type: ignore[list-item]
        for i, w in enumerate(weights):
            k_in = self.shapes[-1][0]
            if w.ndim != 4 or w.shape[1] != k_in:
                raise ShapeError(
                    f"layer {i + 1} weights {tuple(w.shape)} do not take {k_in} input channels: "
                    f"expected ({'K'}, {k_in}, h, w)"
                )
            _, height, width = self.shapes[-1]
            out = (
                conv_output(height, w.shape[2], strides[i], paddings[i]),
                conv_output(width, w.shape[3], strides[i], paddings[i]),
            )
            if min(out) < 1:
                raise ShapeError(f"layer {i + 1}: input {height}×{width} is too small for it")
            self.shapes.append((int(w.shape[0]), *out))
        self._layer_lipschitz: dict[int, float] = {}
        self._lipschitz = None

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    def layer_forward(self, i: int, codes: torch.Tensor) -> torch.Tensor:
        """D_i γ_i (i = 1 … L) onto the shape of γ_{i−1}."""
        w, s, p = self.weights[i - 1], self.strides[i - 1], self.paddings[i - 1]
        target = self.shapes[i - 1][1:]
        natural = [(codes.shape[-2 + a] - 1) * s - 2 * p + w.shape[2 + a] for a in range(2)]
        extra = tuple(t - n for t, n in zip(target, natural))
        return F.conv_transpose2d(codes, w, stride=s, padding=p, output_padding=extra)

    def layer_adjoint(self, i: int, signals: torch.Tensor) -> torch.Tensor:
        """D_iᵀ γ_{i−1}."""
        return F.conv2d(
            signals, self.weights[i - 1], stride=self.strides[i - 1], padding=self.paddings[i - 1]
        )

    def partial_forward(self, codes: torch.Tensor, start: int, stop: int = 0) -> torch.Tensor:
        """D_(stop+1, start) γ_start: the layer-``stop`` representation implied by γ_start."""
        for i in range(start, stop, -1):
            codes = self.layer_forward(i, codes)
        return codes

    def forward(self, codes: Any) -> Any:
        return self.partial_forward(codes, self.n_layers, 0)

    def adjoint(self, signals: Any) -> Any:
        for i in range(1, self.n_layers + 1):
            signals = self.layer_adjoint(i, signals)
        return signals

    def code_shape(self, signals: Any, layer: int | None = None) -> tuple[int, ...]:
        if tuple(signals.shape[1:]) != self.shapes[0]:
            raise ShapeError(
                f"images of shape {tuple(signals.shape)} do not fit this multi-layer dictionary "
                f"built for (n, {', '.join(map(str, self.shapes[0]))})"
            )
        return (int(signals.shape[0]), *self.shapes[self.n_layers if layer is None else layer])

    @torch.no_grad()
    def power_iteration(self, i: int, v: torch.Tensor, n_iter: int) -> tuple[torch.Tensor, float]:
        """``n_iter`` power-iteration steps on D_iᵀD_i from a code ``v`` of layer i (a warm
        start, e.g. the vector of the previous training step): the new unit vector and the
        estimate of ‖D_i‖² (1 % margin), which is also cached for ``layer_lipschitz``."""
        w = self.weights[i - 1].detach()
        v = v.to(w) / v.norm().clamp_min(1e-30)
        estimate = 0.0
        for _ in range(max(n_iter, 1)):
            u = self.layer_adjoint(i, self.layer_forward(i, v))
            estimate = float(u.norm())
            if estimate == 0.0:
                break
            v = u / estimate
        self._layer_lipschitz[i] = estimate * 1.01
        return v, self._layer_lipschitz[i]

    def set_layer_lipschitz(self, i: int, value: float) -> None:
        """Use ``value`` for ‖D_i‖² (one tracked by the caller) instead of estimating it."""
        self._layer_lipschitz[i] = float(value)

    @torch.no_grad()
    def layer_lipschitz(self, i: int, n_iter: int = 50) -> float:
        """‖D_i‖² by power iteration on D_iᵀD_i (1 % margin), cached."""
        if i not in self._layer_lipschitz:
            w = self.weights[i - 1].detach()
            gen = torch.Generator().manual_seed(i)
            v = torch.randn((1, *self.shapes[i]), generator=gen, dtype=torch.float64).to(w)
            estimate = 0.0
            for _ in range(n_iter):
                u = self.layer_adjoint(i, self.layer_forward(i, v))
                norm = float(u.norm())
                if norm == 0.0:
                    break
                v = u / norm
                if abs(norm - estimate) <= 1e-6 * norm:
                    estimate = norm
                    break
                estimate = norm
            self._layer_lipschitz[i] = estimate * 1.01
        return self._layer_lipschitz[i]

    def lipschitz(self, like: Any = None, n_iter: int = 100, tol: float = 1e-7) -> float:
        if self._lipschitz is None:
            v = torch.zeros(
                (1, *self.shapes[0]), dtype=self.weights[0].dtype, device=self.weights[0].device
            )
            with torch.no_grad():
                self._lipschitz = super().lipschitz(v, n_iter, tol)
        return float(self._lipschitz)

    def to_backend(self, backend: str) -> MultiLayerConvDictionary:
        if backend == "torch":
            return self
        raise BackendUnavailableError(
            f"the multi-layer dictionary runs on torch tensors, not '{backend}'; use backend=torch"
        )
