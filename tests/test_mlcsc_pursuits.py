"""ML-CSC: the multi-layer operator, layered thresholding = a CNN, ML-ISTA solves ML-BP."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from sparseland import build
from sparseland.plugins.convolutional.ml_pursuit import default_steps
from sparseland.plugins.convolutional.multilayer import MultiLayerConvDictionary
from sparseland.problems import Lasso, MultiLayerLasso

F64 = torch.float64


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _unit(w: torch.Tensor) -> torch.Tensor:
    return w / w.flatten(1).norm(dim=1)[:, None, None, None]


def _three_layers(dtype: torch.dtype = F64) -> MultiLayerConvDictionary:
    gen = torch.Generator().manual_seed(0)
    weights = [
        _unit(torch.randn(shape, generator=gen, dtype=dtype))
        for shape in [(8, 1, 3, 3), (12, 8, 3, 3), (16, 12, 3, 3)]
    ]
    return MultiLayerConvDictionary(weights, [1, 2, 2], [1, 1, 0], (1, 13, 13))


def test_adjoint_dot_product_with_strides_and_padding() -> None:
    op = _three_layers()
    x = torch.randn(2, 1, 13, 13, dtype=F64)
    z = torch.randn(op.code_shape(x), dtype=F64)
    assert op.forward(z).shape == x.shape
    lhs, rhs = float((op.forward(z) * x).sum()), float((z * op.adjoint(x)).sum())
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)
    for i in range(1, 4):  # every layer, and its Lipschitz constant bounds ‖D_i v‖²
        v = torch.randn((3, *op.shapes[i]), dtype=F64)
        u = torch.randn((3, *op.shapes[i - 1]), dtype=F64)
        a = float((op.layer_forward(i, v) * u).sum())
        assert abs(a - float((v * op.layer_adjoint(i, u)).sum())) <= 1e-12 * abs(a)
        assert float(op.layer_forward(i, v).pow(2).sum()) <= op.layer_lipschitz(i) * float(
            v.pow(2).sum()
        )


def test_layered_thresholding_is_a_cnn_forward_pass() -> None:
    """Reference: a hand-built torch CNN, Conv2d (with bias) → ReLU per layer."""
    op = _three_layers(torch.float32)
    gen = torch.Generator().manual_seed(1)
    biases = [-0.1 * torch.rand(w.shape[0], generator=gen) for w in op.weights]
    cnn = nn.Sequential()
    for w, b, s, p in zip(op.weights, biases, op.strides, op.paddings):
        conv = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], stride=s, padding=p)
        conv.weight.data.copy_(w)
        conv.bias.data.copy_(b)
        cnn.extend([conv, nn.ReLU()])
    x = torch.rand(5, 1, 13, 13, generator=gen)
    pursuit = build("pursuit", "layered_thresholding")
    layers = pursuit.layers(x, op, taus=[-b for b in biases])
    with torch.no_grad():
        expected = cnn(x)
    torch.testing.assert_close(layers[-1], expected, rtol=1e-6, atol=1e-6)
    # and ML-ISTA / ML-FISTA with zero unfoldings and unit steps is that same CNN (Sulam et al.)
    for name in ("ml_ista", "ml_fista"):
        ml = build("pursuit", name, unfoldings=0).layers(x, op, [-b for b in biases], [1.0] * 3)
        torch.testing.assert_close(ml[-1], expected, rtol=1e-6, atol=1e-6)


def _two_layer_problem() -> tuple[MultiLayerConvDictionary, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    w1 = _unit(torch.randn(4, 1, 3, 3, generator=gen, dtype=F64))
    w2 = _unit(torch.randn(6, 4, 3, 3, generator=gen, dtype=F64))
    op = MultiLayerConvDictionary([w1, w2], [1, 1], [0, 0], (1, 8, 8))
    gamma = torch.zeros(1, *op.shapes[2], dtype=F64)
    gamma.view(-1)[torch.randperm(gamma.numel(), generator=gen)[:5]] = torch.randn(
        5, generator=gen, dtype=F64
    )
    x = op.forward(gamma) + 0.05 * torch.randn(1, 1, 8, 8, generator=gen, dtype=F64)
    return op, x


def _dense(op: MultiLayerConvDictionary, apply: object, n: int) -> np.ndarray:
    eye = torch.eye(n, dtype=F64)
    cols = [apply(eye[j].reshape(1, *op.shapes[-1])).reshape(-1) for j in range(n)]  # type: ignore[operator]
    return torch.stack(cols, dim=1).numpy()


def _ml_bp_reference(op: MultiLayerConvDictionary, x: torch.Tensor, lams: list[float]) -> float:
    """An independent solver: dense-matrix ADMM for min ½‖x − Aγ‖² + λ₁‖Bγ‖₁ + λ₂‖γ‖₁,
    A = D₁D₂, B = D₂, split u = Bγ, v = γ (Boyd et al. 2011, §6.4.1 generalised lasso)."""
    n = int(np.prod(op.shapes[-1]))
    A = _dense(op, op.forward, n)
    B = _dense(op, lambda g: op.layer_forward(2, g), n)
    xv, rho = x.reshape(-1).numpy(), 1.0
    inverse = np.linalg.inv(A.T @ A + rho * (B.T @ B + np.eye(n)))
    g, u, v = np.zeros(n), np.zeros(B.shape[0]), np.zeros(n)
    p, q = np.zeros_like(u), np.zeros_like(v)

    def soft(a: np.ndarray, t: float) -> np.ndarray:
        return np.sign(a) * np.maximum(np.abs(a) - t, 0.0)

    for _ in range(5000):
        g = inverse @ (A.T @ xv + rho * B.T @ (u - p) + rho * (v - q))
        u, v = soft(B @ g + p, lams[0] / rho), soft(g + q, lams[1] / rho)
        p, q = p + B @ g - u, q + g - v
    return float(
        0.5 * np.sum((xv - A @ v) ** 2) + lams[0] * np.abs(B @ v).sum() + lams[1] * np.abs(v).sum()
    )


def test_ml_ista_reaches_the_multi_layer_bp_objective() -> None:
    op, x = _two_layer_problem()
    lams = [0.05, 0.05]
    f_star = _ml_bp_reference(op, x, lams)
    gaps = {}
    for name, smoothing, unfoldings in [
        ("ml_ista", 0.3, 3000),
        ("ml_fista", 0.3, 800),
        ("ml_fista", 0.05, 800),
    ]:
        pursuit = build(
            "pursuit", name, lam=lams, unfoldings=unfoldings, smoothing=smoothing, positive=False
        )
        gamma = pursuit(x, op)
        value = float(MultiLayerLasso(tuple(lams)).objective(x, op, gamma)[0])
        gaps[name, smoothing] = (value - f_star) / f_star
    assert all(g > -1e-9 for g in gaps.values())  # nothing beats the optimum
    assert gaps["ml_ista", 0.3] < 3e-3  # ML-ISTA reaches the ML-BP objective to 0.3 % ...
    assert abs(gaps["ml_fista", 0.3] - gaps["ml_ista", 0.3]) < 2e-4  # (ML-FISTA: same point)
    assert gaps["ml_fista", 0.05] < 5e-4  # ... and the gap is O(smoothing): it shrinks with it
    assert gaps["ml_fista", 0.05] < gaps["ml_ista", 0.3] / 3


def test_layered_thresholding_with_steps_is_the_first_ml_ista_iteration() -> None:
    """With steps s_i and τ_i = s_i λ_i, the first ML-ISTA iteration from 0 is layered
    thresholding with the same steps, whose codes γ_i / s_i are the CNN's (thresholds λ_i)."""
    op = _three_layers()
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(3, 1, 13, 13, generator=gen, dtype=F64)
    lams = [0.05 * torch.rand(w.shape[0], generator=gen, dtype=F64) for w in op.weights]
    steps = default_steps(op, 0.7)
    taus = [s * lam for s, lam in zip(steps, lams)]
    lt = build("pursuit", "layered_thresholding")
    cnn = lt.layers(x, op, lams)
    scaled = lt.layers(x, op, taus, steps)
    for name in ("ml_ista", "ml_fista"):
        ml = build("pursuit", name, unfoldings=0).layers(x, op, taus, steps)
        for a, b in zip(ml, scaled):
            torch.testing.assert_close(a, b)
    for g, s, c in zip(scaled, steps, cnn):
        torch.testing.assert_close(g / s, c)


def test_ml_ista_steps_follow_the_paper_formula() -> None:
    """default_steps: s_i = c / Π_{j≤i}‖D_j‖² for inner layers, s_L = s_{L−1}/‖D_L‖²."""
    op = _three_layers()
    L = [op.layer_lipschitz(i) for i in (1, 2, 3)]
    s = default_steps(op, 0.5)
    assert s[0] == pytest.approx(0.5 / L[0])
    assert s[1] == pytest.approx(0.5 * s[0] / L[1])
    assert s[2] == pytest.approx(s[1] / L[2])


def test_layered_bp_layer_one_is_the_lasso_solution() -> None:
    """Layer 1 of layered BP equals the generic fista plugin on the one-layer dictionary."""
    op = _three_layers()
    x = torch.randn(2, 1, 13, 13, dtype=F64, generator=torch.Generator().manual_seed(3))
    layers = build("pursuit", "layered_bp", lam=[0.2], unfoldings=800, positive=False).layers(x, op)
    first = MultiLayerConvDictionary(op.weights[:1], op.strides[:1], op.paddings[:1], (1, 13, 13))
    ref = build("pursuit", "fista", lam=0.2, max_iter=2000, tol=1e-12)(x, first)
    f_ours = Lasso(0.2).objective(x, first, layers[0])
    f_ref = Lasso(0.2).objective(x, first, ref)
    torch.testing.assert_close(f_ours, f_ref, rtol=1e-6, atol=0)
    assert [tuple(g.shape[1:]) for g in layers] == op.shapes[1:]


def test_ml_ista_is_differentiable_through_its_unfoldings() -> None:
    op = _three_layers(torch.float32)
    for w in op.weights:
        w.requires_grad_(True)
    x = torch.rand(2, 1, 13, 13)
    gamma = build("pursuit", "ml_fista", unfoldings=3).layers(x, op, [0.01] * 3, [1.0] * 3)[-1]
    gamma.sum().backward()
    assert all(w.grad is not None and float(w.grad.abs().sum()) > 0 for w in op.weights)
