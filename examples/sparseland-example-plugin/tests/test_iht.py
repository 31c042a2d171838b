"""example_iht against references: a known ground truth, least squares on the support
(numpy), exhaustive search over supports, and the majorisation-minimisation descent property."""

from __future__ import annotations

import importlib.metadata
import itertools

import numpy as np
import pytest
import torch
from sparseland_example.iht import IterativeHardThresholding, hard_threshold

from sparseland import build
from sparseland.backend import namespace
from sparseland.errors import ConfigError, UnknownPluginError
from sparseland.operators import MatrixOperator
from sparseland.registry import get


def _dictionary(m: int, k: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    D = torch.randn(m, k, generator=gen, dtype=torch.float64)
    return D / D.norm(dim=0, keepdim=True)


def _sparse_codes(n: int, k: int, s: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    support = torch.rand(n, k, generator=gen).argsort(dim=1)[:, :s]
    values = (1.0 + torch.rand(n, s, generator=gen, dtype=torch.float64)) * torch.where(
        torch.rand(n, s, generator=gen) < 0.5, -1.0, 1.0
    ).double()
    return torch.zeros(n, k, dtype=torch.float64).scatter(1, support, values)


def test_registered_through_the_entry_point() -> None:
    try:
        importlib.metadata.version("sparseland-example")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("not installed: `pip install examples/sparseland-example-plugin` first")
    entry = get("pursuit", "example_iht")
    assert entry.cls is IterativeHardThresholding
    assert entry.distribution == "sparseland-example"  # found through its package's entry point


def test_hard_threshold_keeps_the_k_largest() -> None:
    v = torch.tensor([[3.0, -5.0, 1.0, 0.5], [0.0, 0.0, 1.5, 0.0], [1.0, 1.0, 1.0, -2.0]])
    out = hard_threshold(namespace(v), v, 2)
    assert torch.equal(out[0], torch.tensor([3.0, -5.0, 0.0, 0.0]))
    assert torch.equal(out[1], v[1])  # fewer than k non-zeros: unchanged
    assert torch.equal(out[2], v[2])  # ties with the k-th magnitude are all kept
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(100, 30, generator=gen, dtype=torch.float64)
    out = hard_threshold(namespace(w), w, 5)
    expected = torch.zeros_like(w).scatter(1, w.abs().topk(5, dim=1).indices, 1.0) * w
    assert torch.equal(out, expected)


def test_recovers_the_true_sparse_codes() -> None:
    D = _dictionary(64, 128, seed=0)
    h_true = _sparse_codes(200, 128, 3, seed=1)
    x = h_true @ D.T  # noiseless: the ground truth is the unique 3-sparse solution
    h = build("pursuit", "example_iht", n_nonzero=3, max_iter=2000, tol=1e-10)(x, D)
    same_support = ((h != 0) == (h_true != 0)).all(dim=1).double().mean()
    assert same_support >= 0.95
    good = ((h != 0) == (h_true != 0)).all(dim=1)
    torch.testing.assert_close(h[good], h_true[good], atol=1e-6, rtol=0)


def test_fixed_point_is_least_squares_on_its_support() -> None:
    D = _dictionary(32, 48, seed=2)
    gen = torch.Generator().manual_seed(3)
    x = _sparse_codes(40, 48, 4, seed=4) @ D.T + 0.05 * torch.randn(40, 32, generator=gen).double()
    pursuit = build("pursuit", "example_iht", n_nonzero=4, max_iter=5000, tol=1e-12)
    h = pursuit(x, D).numpy()
    Dn, xn = D.numpy(), x.numpy()
    for i in range(len(xn)):  # a reference solve per signal is fine in a test
        support = np.flatnonzero(h[i])
        assert len(support) <= 4
        ls, *_ = np.linalg.lstsq(Dn[:, support], xn[i], rcond=None)
        np.testing.assert_allclose(h[i, support], ls, atol=1e-6)


def test_finds_the_exhaustive_search_optimum_on_most_signals() -> None:
    D = _dictionary(12, 16, seed=5)  # mutual coherence 0.66: not every signal is easy
    gen = torch.Generator().manual_seed(6)
    x = _sparse_codes(60, 16, 2, seed=7) @ D.T + 0.01 * torch.randn(60, 12, generator=gen).double()
    Dn, xn = D.numpy(), x.numpy()
    best = np.full(len(xn), np.inf)
    for support in itertools.combinations(range(16), 2):  # every 2-sparse support
        A = Dn[:, support]
        coef = np.linalg.lstsq(A, xn.T, rcond=None)[0]
        best = np.minimum(best, 0.5 * ((xn.T - A @ coef) ** 2).sum(axis=0))
    rates = {}
    for normalized in (True, False):
        pursuit = build(
            "pursuit", "example_iht", n_nonzero=2, max_iter=3000, tol=1e-12, normalized=normalized
        )
        h = pursuit(x, D)
        ours = 0.5 * ((x - h @ D.T) ** 2).sum(dim=1).numpy()
        assert (ours >= best - 1e-12).all()
        rates[normalized] = np.mean(ours <= best + 1e-9)
    assert rates[True] >= 0.85  # measured 0.93
    assert rates[True] > rates[False]  # the adaptive step escapes supports the fixed one keeps


@pytest.mark.parametrize("normalized", [True, False])
def test_residual_never_increases(normalized: bool) -> None:
    D = _dictionary(16, 32, seed=8)
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(50, 16, generator=gen, dtype=torch.float64)
    op = MatrixOperator(D)
    residuals = []
    for iters in (1, 2, 5, 10, 20, 50):
        pursuit = build(
            "pursuit", "example_iht", n_nonzero=3, max_iter=iters, tol=0.0, normalized=normalized
        )
        h = pursuit(x, op)
        residuals.append(((x - h @ D.T) ** 2).sum(dim=1))
        assert pursuit.info is not None and pursuit.info.iterations == iters
    for before, after in itertools.pairwise(residuals):
        assert (after <= before + 1e-10).all()


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match="n_nonzero"):
        build("pursuit", "example_iht", n_nonzero=0)
    with pytest.raises(ConfigError, match="step_scale"):
        build("pursuit", "example_iht", step_scale=1.5)
    with pytest.raises(UnknownPluginError, match="example_iht"):
        build("pursuit", "example_ihtt")
