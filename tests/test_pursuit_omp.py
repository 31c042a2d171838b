"""OMP and thresholding against scikit-learn's orthogonal_mp_gram and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import orthogonal_mp_gram

from sparseland import build
from sparseland.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def problem(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    # Well conditioned: a random (incoherent) dictionary with unit-norm atoms.
    gen = torch.Generator().manual_seed(1)
    d = torch.randn(32, 64, generator=gen, dtype=torch.float64)
    d /= d.norm(dim=0)
    x = torch.randn(40, 32, generator=gen, dtype=torch.float64)
    return x.to(dtype), d.to(dtype)


def reference(x: torch.Tensor, d: torch.Tensor, **kw: object) -> np.ndarray:
    gram = (d.T @ d).double().numpy()
    xy = (x @ d).double().numpy().T
    return orthogonal_mp_gram(gram, xy, **kw).T


KERNELS = ["compiled", "batched"]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("k", [1, 5, 12])
def test_k_rule_matches_sklearn(k: int, kernel: str) -> None:
    x, d = problem()
    pursuit = build("pursuit", "omp", k=k, kernel=kernel)
    h = pursuit(x, d).numpy()
    ref = reference(x, d, n_nonzero_coefs=k)
    assert np.array_equal(h != 0, ref != 0)
    np.testing.assert_allclose(h, ref, atol=1e-10)
    assert pursuit.info is not None and pursuit.info.iterations == k


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("eps", [2.0, 0.5, 0.05])
def test_eps_rule_matches_sklearn(eps: float, kernel: str) -> None:
    x, d = problem()
    # eps bounds the residual norm; scikit-learn's tol bounds its square
    pursuit = build("pursuit", "omp", k=None, eps=eps**0.5, kernel=kernel)
    h = pursuit(x, d).numpy()
    norms = (x * x).sum(1).numpy()
    ref = reference(x, d, tol=eps, norms_squared=norms)
    assert np.array_equal(h != 0, ref != 0)
    np.testing.assert_allclose(h, ref, atol=1e-10)
    residual = ((x.numpy() - h @ d.numpy().T) ** 2).sum(1)
    assert np.all(residual <= eps + 1e-10)
    # Signals stop individually: the sparsity varies across the batch.
    assert len(set((h != 0).sum(1).tolist())) > 1


@pytest.mark.parametrize("kernel", KERNELS)
def test_k_and_eps_together_stop_at_whichever_comes_first(kernel: str) -> None:
    x, d = problem()
    h = build("pursuit", "omp", k=6, eps=0.5**0.5, kernel=kernel)(x, d).numpy()
    nnz = (h != 0).sum(1)
    residual = ((x.numpy() - h @ d.numpy().T) ** 2).sum(1)
    assert np.all(nnz <= 6)
    assert np.all((residual <= 0.5 + 1e-10) | (nnz == 6))


@pytest.mark.parametrize("kernel", KERNELS)
def test_float32(kernel: str) -> None:
    x, d = problem(torch.float32)
    h = build("pursuit", "omp", k=5, kernel=kernel)(x, d)
    assert h.dtype == torch.float32
    ref = reference(x.double(), d.double(), n_nonzero_coefs=5)
    assert np.array_equal(h.numpy() != 0, ref != 0)
    np.testing.assert_allclose(h.numpy(), ref, atol=1e-4)


def test_k_larger_than_atoms_is_a_clear_error() -> None:
    x, d = problem()
    with pytest.raises(ConfigError, match="k"):
        build("pursuit", "omp", k=65)(x, d)
    with pytest.raises(ConfigError, match="k"):
        build("pursuit", "threshold", mode="hard", k=65)(x, d)


def test_threshold_soft_and_hard() -> None:
    x, d = problem()
    c = x @ d
    soft = build("pursuit", "threshold", mode="soft", lam=0.3)(x, d)
    assert torch.equal(soft, torch.sign(c) * torch.clamp(c.abs() - 0.3, min=0))
    hard = build("pursuit", "threshold", mode="hard", lam=0.3)(x, d)
    assert torch.equal(hard, torch.where(c.abs() > 0.3, c, torch.zeros_like(c)))
    top = build("pursuit", "threshold", mode="hard", k=4)(x, d)
    assert torch.equal((top != 0).sum(1), torch.full((40,), 4))
    kept = top.abs().masked_fill(top == 0, float("inf")).min(1).values
    dropped = c.abs().masked_fill(top != 0, 0).max(1).values
    assert torch.all(kept >= dropped)
    assert torch.equal(top[top != 0], c[top != 0])


@pytest.mark.parametrize("block", [1, 7, 40])
@pytest.mark.parametrize("rule", [{"k": 5, "eps": None}, {"k": 32, "eps": 0.5}])
def test_blocks_match_the_whole_batch_and_sklearn(block: int, rule: dict) -> None:
    # The CPU path solves blocks of signals; any block length gives the same codes.
    from sparseland.plugins.pursuit.omp import batch_omp

    x, d = problem()
    k, eps = rule["k"], rule["eps"]
    norm = None if eps is None else eps**0.5  # batch_omp bounds ‖r‖, scikit-learn's tol ‖r‖²
    whole, steps, _ = batch_omp(x, d, k, norm, block=10**6)
    codes, blocked_steps, residual_sq = batch_omp(x, d, k, norm, block=block)
    np.testing.assert_allclose(codes.numpy(), whole.numpy(), atol=1e-12)
    assert blocked_steps == steps
    kw: dict = {"n_nonzero_coefs": k}
    if eps is not None:
        kw = {"tol": eps, "norms_squared": (x * x).sum(1).numpy()}  # tol overrides k
    ref = reference(x, d, **kw)
    assert np.array_equal(codes.numpy() != 0, ref != 0)
    np.testing.assert_allclose(codes.numpy(), ref, atol=1e-10)
    exact = ((x - codes @ d.T) ** 2).sum(1)
    np.testing.assert_allclose(residual_sq.numpy(), exact.numpy(), atol=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_info_reports_the_mean_relative_residual(kernel: str) -> None:
    x, d = problem(torch.float32)
    pursuit = build("pursuit", "omp", k=5, kernel=kernel)
    h = pursuit(x, d)
    exact = float(((x - h @ d.T).norm(dim=1) / x.norm(dim=1)).mean())
    assert pursuit.info is not None
    assert pursuit.info.rel_change == pytest.approx(exact, rel=1e-5)


@pytest.mark.parametrize("kernel", KERNELS)
def test_degenerate_signals_stop(kernel: str) -> None:
    # A zero signal has no atom to pick; a repeated atom is linearly dependent.
    x, d = problem()
    x[0] = 0.0
    d = torch.cat([d, d[:, :1]], dim=1)
    h = build("pursuit", "omp", k=12, kernel=kernel)(x, d).numpy()
    ref = reference(x[1:], d, n_nonzero_coefs=12)
    assert not h[0].any()
    # Which copy of the repeated atom wins a tie is up to rounding; never both.
    assert not np.any((h[:, 0] != 0) & (h[:, -1] != 0))
    merged, ref_merged = h[1:, :-1].copy(), ref[:, :-1].copy()
    merged[:, 0] += h[1:, -1]
    ref_merged[:, 0] += ref[:, -1]
    np.testing.assert_allclose(merged, ref_merged, atol=1e-10)


def test_inputs_that_require_grad() -> None:
    x, d = problem()
    h = build("pursuit", "omp", k=3)(x.requires_grad_(), d.requires_grad_())
    ref = reference(x.detach(), d.detach(), n_nonzero_coefs=3)
    np.testing.assert_allclose(h.detach().numpy(), ref, atol=1e-10)


def test_certified_argmax_is_exact_within_its_bound() -> None:
    # float64 on the CPU selects from a float32 α: an approximation within the bound must give
    # the exact argmax |α| (first index on ties), asking for the exact α only on close calls.
    from sparseland.plugins.pursuit.omp import _certified_argmax

    gen = torch.Generator().manual_seed(3)
    alpha = torch.randn(500, 40, generator=gen, dtype=torch.float64)
    bound = torch.full((500,), 1e-4, dtype=torch.float64)
    alpha[:50, 7] = -alpha[:50].abs().amax(dim=1) - 5e-5  # leads by less than 2·bound
    alpha[50:60, 3] = alpha[50:60].abs().amax(dim=1)  # exact ties: the first index wins
    alpha[50:60, 30] = -alpha[50:60, 3]
    noise = (2 * torch.rand(500, 40, generator=gen, dtype=torch.float64) - 1) * 0.9e-4
    asked: list[int] = []

    def exact(rows: torch.Tensor) -> torch.Tensor:
        asked.extend(rows.tolist())
        return alpha[rows]

    chosen = _certified_argmax((alpha + noise).float(), bound, exact)
    assert torch.equal(chosen, alpha.abs().argmax(dim=1))
    assert set(range(50, 60)) <= set(asked)  # ties always are close calls
    assert 50 <= len(asked) < 120  # most near-ties too, and few others


def test_float64_selection_is_exact_on_near_parallel_atoms() -> None:
    # Pairs of atoms 1e-9 apart: their correlations differ below float32's resolution, and the
    # float64 result must still be scikit-learn's.
    gen = torch.Generator().manual_seed(4)
    d = torch.randn(32, 40, generator=gen, dtype=torch.float64)
    d[:, 20:] = d[:, :20] + 1e-9 * torch.randn(32, 20, generator=gen, dtype=torch.float64)
    d /= d.norm(dim=0)
    x = torch.randn(300, 32, generator=gen, dtype=torch.float64)
    h = build("pursuit", "omp", k=4)(x, d).numpy()
    ref = reference(x, d, n_nonzero_coefs=4)
    assert np.array_equal(h != 0, ref != 0)
    np.testing.assert_allclose(h, ref, atol=1e-6)
    assert ((h[:, :20] != 0) & (h[:, 20:] != 0)).sum() == 0  # never both of a pair


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_and_batched_kernels_agree_on_natural_patches(dtype: torch.dtype) -> None:
    """On coherent atoms (8×8 DCT patches, 64×256 overcomplete DCT) the two kernels, and two
    threads against one, pick the same atoms and give the same codes up to rounding."""
    from sparseland.operators import dct_dictionary

    gen = torch.Generator().manual_seed(4)
    coarse = torch.randn(600, 1, 4, 4, generator=gen, dtype=torch.float64)
    x = torch.nn.functional.interpolate(coarse, size=(8, 8), mode="bilinear").reshape(600, 64)
    x = (x + 0.05 * torch.randn(600, 64, generator=gen, dtype=torch.float64)).to(dtype)
    d = dct_dictionary(8, 256).to(dtype)
    batched = build("pursuit", "omp", k=8, kernel="batched")(x, d)
    compiled = build("pursuit", "omp", k=8, kernel="compiled")(x, d)
    assert torch.equal(batched != 0, compiled != 0)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(compiled, batched, atol=tol, rtol=0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        two = build("pursuit", "omp", k=8, kernel="compiled")(x, d)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(two, compiled)
