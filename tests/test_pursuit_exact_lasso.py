"""active_set: the exact Lasso, certified by its duality gap, at the edges where it used to fail."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import lars_path

from sparseland import build
from sparseland.operators import MatrixOperator, dct_dictionary
from sparseland.problems import Lasso

LAM = 0.1


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def lars_reference(x: np.ndarray, d: np.ndarray, lam: float, positive: bool) -> np.ndarray:
    """scikit-learn's exact LARS-Lasso path at λ (its alpha is λ/m for the ½‖·‖² objective)."""
    m = d.shape[0]
    out = []
    for xi in x:
        _, _, coefs = lars_path(
            d, xi, alpha_min=lam / m, method="lasso", positive=positive, return_path=False
        )
        out.append(coefs.ravel())
    return np.stack(out)


def objective(x: np.ndarray, d: np.ndarray, h: np.ndarray) -> np.ndarray:
    return 0.5 * ((x - h @ d.T) ** 2).sum(1) + LAM * np.abs(h).sum(1)


def relative_gap(x: np.ndarray, d: np.ndarray, h: np.ndarray, positive: bool) -> np.ndarray:
    r = x - h @ d.T
    c = r @ d
    worst = c.max(1) if positive else np.abs(c).max(1)
    nu = r * np.minimum(1.0, LAM / np.maximum(worst, 1e-300))[:, None]
    dual = 0.5 * (x * x).sum(1) - 0.5 * ((x - nu) ** 2).sum(1)
    p = objective(x, d, h)
    return (p - dual) / p


def dct_patches(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth random 8×8 patches (DC removed, unit norm) and the 64×256 overcomplete DCT: the
    regime of natural patches, where atoms are coherent and supports have 20–40 atoms."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, 1, 4, 4, generator=gen, dtype=torch.float64)
    x = torch.nn.functional.interpolate(coarse, size=(8, 8), mode="bilinear").reshape(n, 64)
    x = x + 0.05 * torch.randn(n, 64, generator=gen, dtype=torch.float64)
    x = x - x.mean(1, keepdim=True)
    return x / x.norm(dim=1, keepdim=True), dct_dictionary(8, 256).double()


KERNELS = ["compiled", "batched"]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("positive", [False, True])
def test_certified_exact_on_overcomplete_dct(positive: bool, kernel: str) -> None:
    x, d = dct_patches(40)
    pursuit = build("pursuit", "active_set", lam=LAM, positive=positive, kernel=kernel)
    h = pursuit(x, d).numpy()
    xn, dn = x.numpy(), d.numpy()
    assert relative_gap(xn, dn, h, positive).max() <= 1e-9
    ref = lars_reference(xn, dn, LAM, positive)
    p, p_ref = objective(xn, dn, h), objective(xn, dn, ref)
    assert np.all(p <= p_ref * (1 + 1e-9))  # never above scikit-learn's exact LARS
    assert np.abs(h - ref).max() < 1e-6
    if positive:
        assert h.min() >= 0
    assert pursuit.info is not None and pursuit.info.rel_change <= 1e-9


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("positive", [False, True])
def test_signal_blocks_give_the_exact_codes(positive: bool, kernel: str) -> None:
    """Solved in blocks of 16 signals (the last one ragged) on the CPU: each block is certified
    and the codes are scikit-learn's LARS ones, the info covers every block."""
    x, d = dct_patches(37, seed=3)
    pursuit = build(
        "pursuit", "active_set", lam=LAM, positive=positive, cpu_block=16, kernel=kernel
    )
    h = pursuit(x, d).numpy()
    xn, dn = x.numpy(), d.numpy()
    assert h.shape == (37, 256)
    assert relative_gap(xn, dn, h, positive).max() <= 1e-9
    assert np.abs(h - lars_reference(xn, dn, LAM, positive)).max() < 1e-6
    assert pursuit.info is not None and pursuit.info.converged_fraction == 1.0
    assert pursuit.info.rel_change <= 1e-9


@pytest.mark.parametrize("kernel", KERNELS)
def test_no_stall_on_small_problems_without_warm_start(kernel: str) -> None:
    """From h = 0 (LARS, no ADMM) it reaches the optimum: the feature-sign version used to
    stop 0.2 above it after its default 50 rounds, silently."""
    gen = torch.Generator().manual_seed(3)
    d = torch.randn(10, 30, generator=gen, dtype=torch.float64)
    d /= d.norm(dim=0)
    x = torch.randn(20, 10, generator=gen, dtype=torch.float64)
    pursuit = build("pursuit", "active_set", lam=LAM, warm_start_iter=0, kernel=kernel)
    h = pursuit(x, d).numpy()
    ref = lars_reference(x.numpy(), d.numpy(), LAM, False)
    assert np.abs(h - ref).max() < 1e-7


@pytest.mark.parametrize("kernel", KERNELS)
def test_warns_when_stopped_short(kernel: str) -> None:
    x, d = dct_patches(20)
    params = {"warm_start_iter": 2, "rounds": 1, "max_iter": 1, "passes": 1}
    pursuit = build("pursuit", "active_set", lam=LAM, kernel=kernel, **params)
    with pytest.warns(RuntimeWarning, match=r"of the signals stopped at max_iter=1"):
        pursuit(x, d)


@pytest.mark.parametrize("kernel", KERNELS)
def test_zero_atom_gives_finite_exact_codes(kernel: str) -> None:
    x, d = dct_patches(10)
    d = d[:, :64].clone()
    d[:, 5] = 0.0
    h = build("pursuit", "active_set", lam=LAM, kernel=kernel)(x, d)
    assert torch.isfinite(h).all() and bool((h[:, 5] == 0).all())
    keep = [j for j in range(64) if j != 5]
    ref = lars_reference(x.numpy(), d[:, keep].numpy(), LAM, False)
    assert np.abs(h[:, keep].numpy() - ref).max() < 1e-7


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_signals(dtype: torch.dtype) -> None:
    x, d = dct_patches(10)
    h = build("pursuit", "active_set", lam=LAM)(x.to(dtype), d.to(dtype))
    assert h.dtype == dtype
    ref = lars_reference(x.to(dtype).double().numpy(), d.to(dtype).double().numpy(), LAM, False)
    scale = float(torch.finfo(dtype).eps) * 50
    assert np.abs(h.double().numpy() - ref).max() < scale


@pytest.mark.parametrize("kernel", KERNELS)
def test_lambda_above_max_gives_zero_codes(kernel: str) -> None:
    x, d = dct_patches(5)
    lam_max = float((x @ d).abs().max())
    h = build("pursuit", "active_set", lam=1.01 * lam_max, kernel=kernel)(x, d)
    assert bool((h == 0).all())


@pytest.mark.parametrize("kernel", KERNELS)
def test_duplicated_atoms_are_certified_without_warning(kernel: str) -> None:
    """A duplicated atom makes G_SS singular if both copies enter: it is kept out, and the
    codes reach scikit-learn's LARS objective (the solution itself is not unique)."""
    gen = torch.Generator().manual_seed(0)
    d = torch.randn(8, 12, generator=gen, dtype=torch.float64)
    d /= d.norm(dim=0)
    d = torch.cat([d, d[:, :3]], 1)
    x = torch.randn(50, 8, generator=gen, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = build("pursuit", "active_set", lam=LAM, kernel=kernel)(x, d).numpy()
    xn, dn = x.numpy(), d.numpy()
    assert relative_gap(xn, dn, h, False).max() <= 1e-9
    ref = lars_reference(xn, dn[:, :12], LAM, False)
    np.testing.assert_allclose(objective(xn, dn, h), objective(xn, dn[:, :12], ref), rtol=1e-9)


def test_small_kernels_run_on_one_thread_and_the_count_comes_back() -> None:
    """The homotopy's small kernels run on one CPU thread; the caller's count is restored,
    also when the solve raises."""
    from sparseland.plugins.pursuit._torch import one_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_thread(torch.device("cpu")):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), one_thread(torch.device("cpu")):
            raise RuntimeError("inside")
        assert torch.get_num_threads() == 2
        x, d = dct_patches(5)
        build("pursuit", "active_set", lam=LAM)(x, d)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("positive", [False, True])
def test_feature_sign_rounds_end_at_the_lars_solution(positive: bool) -> None:
    """The rounds alone (no homotopy): every signal they call done is scikit-learn's LARS
    solution, from ADMM's nearby codes and from h = 0."""
    from sparseland.plugins.pursuit import _feature_sign

    x, d = dct_patches(30, seed=5)
    problem = _feature_sign.Problem(d, d.T @ d, LAM, positive, torch.ones(256, dtype=torch.bool))
    near = build("pursuit", "admm", lam=LAM, positive=positive, max_iter=20, tol=0.0)(x, d)
    ref = lars_reference(x.numpy(), d.numpy(), LAM, positive)
    for start in (near, torch.zeros_like(near)):
        h, done, finished, primal, gap = _feature_sign.feature_sign(problem, x, start, 60)
        assert bool(done.any()) and sum(finished) == int(done.sum())
        hn = h[done].numpy()
        assert np.abs(hn - ref[done.numpy()]).max() < 1e-8
        assert relative_gap(x[done].numpy(), d.numpy(), hn, positive).max() <= 1e-9
        # the objective and gap the rounds report are the problem's own at those codes
        p_ref, g_ref, _ = Lasso(LAM, positive).objective_and_gap(
            x[done], MatrixOperator(d), h[done]
        )
        assert torch.allclose(primal[done], p_ref, rtol=1e-12, atol=1e-14)
        assert torch.allclose(gap[done], g_ref, rtol=1e-6, atol=1e-13)
        assert bool(primal[~done].isnan().all())


@pytest.mark.parametrize("positive", [False, True])
def test_compiled_rounds_end_at_the_lars_solution(positive: bool) -> None:
    """The compiled rounds alone (no homotopy), from h = 0 and from ADMM's codes: every signal
    reaches a KKT point, which is scikit-learn's LARS solution, and the objective and gap they
    return are the problem's own."""
    from sparseland.plugins.pursuit import _feature_sign, _feature_sign_compiled

    x, d = dct_patches(30, seed=5)
    problem = _feature_sign.Problem(d, d.T @ d, LAM, positive, torch.ones(256, dtype=torch.bool))
    near = build("pursuit", "admm", lam=LAM, positive=positive, max_iter=20, tol=0.0)(x, d)
    ref = lars_reference(x.numpy(), d.numpy(), LAM, positive)
    for start in (torch.zeros_like(near), near):
        h, done, primal, gap, ran = _feature_sign_compiled.feature_sign(problem, x, start, 500, 1)
        assert bool(done.all()) and 0 < ran < 500
        assert np.abs(h.numpy() - ref).max() < 1e-8
        assert relative_gap(x.numpy(), d.numpy(), h.numpy(), positive).max() <= 1e-9
        p_ref, g_ref, _ = Lasso(LAM, positive).objective_and_gap(x, MatrixOperator(d), h)
        assert torch.allclose(primal, p_ref, rtol=1e-12) and torch.allclose(gap, g_ref)


def test_compiled_rounds_swap_atoms_in_the_span_of_the_support() -> None:
    """Rough signals at a small λ on the overcomplete DCT (a Kronecker product: nine atoms that
    share a vertical factor are dependent): on two of these ten signals the path from h = 0
    meets a violating atom in the span of S dozens of times. It swaps with an atom of S, and
    the rounds alone reach scikit-learn's LARS objective; without the swap those signals stop
    there, not done."""
    from sparseland.plugins.pursuit import _feature_sign, _feature_sign_compiled

    lam = 0.03
    gen = torch.Generator().manual_seed(0)
    d = dct_dictionary(8, 256).double()
    x = torch.randn(10, 64, generator=gen, dtype=torch.float64)
    x /= x.norm(dim=1, keepdim=True)
    problem = _feature_sign.Problem(d, d.T @ d, lam, False, torch.ones(256, dtype=torch.bool))
    _, done, primal, gap, _ = _feature_sign_compiled.feature_sign(
        problem, x, torch.zeros(10, 256, dtype=torch.float64), 500, 1
    )
    assert bool(done.all())
    assert float((gap / primal).max()) <= 1e-9
    ref = torch.from_numpy(lars_reference(x.numpy(), d.numpy(), lam, False))
    p_ref = Lasso(lam).objective(x, MatrixOperator(d), ref)
    assert torch.allclose(primal, p_ref, rtol=1e-9)


def test_compiled_rounds_refactor_a_drifted_inverse() -> None:
    """The 8×8 patch of camera at (124, 130) from 10 float32 ADMM iterations: the start has
    near-dependent atoms that leave on the way, and the updated G_SS⁻¹ keeps their rounding,
    enough for a duality gap of 5.7e-9 × P at the KKT point the rounds reach (above the
    1e-9 tolerance, one step of iterative refinement included). The rounds form G_SS⁻¹ afresh
    there and end at rounding level."""
    from skimage import data

    from sparseland.plugins.pursuit import _feature_sign, _feature_sign_compiled

    patch = data.camera().astype(np.float64)[124:132, 130:138].reshape(1, 64) / 255.0
    patch -= patch.mean()
    x = torch.tensor(patch / np.linalg.norm(patch))
    d = dct_dictionary(8, 256).double()
    admm = build("pursuit", "admm", lam=LAM, max_iter=10, tol=0.0, compute_gap=False)
    start = admm(x.float(), d.float()).double()
    problem = _feature_sign.Problem(d, d.T @ d, LAM, False, torch.ones(256, dtype=torch.bool))
    _, done, primal, gap, _ = _feature_sign_compiled.feature_sign(problem, x, start, 512, 1)
    assert bool(done.all()) and float(gap[0] / primal[0]) <= 1e-12


def test_compiled_rounds_give_the_same_codes_on_two_threads() -> None:
    """Each signal is solved alone, so splitting the signals between threads changes nothing."""
    from sparseland.plugins.pursuit import _feature_sign, _feature_sign_compiled
    from sparseland.plugins.pursuit._torch import thread_shares

    x, d = dct_patches(600, seed=7)
    problem = _feature_sign.Problem(d, d.T @ d, LAM, False, torch.ones(256, dtype=torch.bool))
    zero = torch.zeros(600, 256, dtype=torch.float64)
    one = _feature_sign_compiled.feature_sign(problem, x, zero, 500, 1)
    two = _feature_sign_compiled.feature_sign(problem, x, zero, 500, 2)
    assert len(thread_shares(600, 2, torch.device("cpu"))) == 2
    assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])


def test_compiled_kernel_refuses_signals_off_the_cpu() -> None:
    from sparseland.errors import ConfigError
    from sparseland.plugins.pursuit.active_set import ActiveSetConfig, resolved

    cfg = ActiveSetConfig(lam=LAM, kernel="compiled")
    with pytest.raises(ConfigError, match="kernel=auto or kernel=batched"):
        resolved(cfg, torch.device("cuda"), (64, 256))
    auto = resolved(ActiveSetConfig(lam=LAM), torch.device("cuda"), (64, 256))
    assert (auto.kernel, auto.warm_start_iter, auto.rounds) == ("batched", 30, 10)
    cpu = resolved(ActiveSetConfig(lam=LAM), torch.device("cpu"), (64, 256))
    assert (cpu.kernel, cpu.warm_start_iter, cpu.rounds) == ("compiled", 0, 8 * 64)


def test_without_numba_the_batched_rounds_run_and_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """No numba: kernel=auto falls back to the batched rounds with a warning that names the
    fix, and kernel=compiled is refused with it; the codes are still exact."""
    import importlib.util

    from sparseland.errors import ConfigError
    from sparseland.plugins.pursuit.active_set import ActiveSetConfig, resolved

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "numba" else find_spec(name)
    )
    with pytest.warns(RuntimeWarning, match="pip install numba"):
        auto = resolved(ActiveSetConfig(lam=LAM), torch.device("cpu"), (64, 256))
    assert auto.kernel == "batched"
    with pytest.raises(ConfigError, match="pip install numba"):
        resolved(ActiveSetConfig(lam=LAM, kernel="compiled"), torch.device("cpu"), (64, 256))
    x, d = dct_patches(10)
    with pytest.warns(RuntimeWarning, match="numba is not installed"):
        h = build("pursuit", "active_set", lam=LAM)(x, d).numpy()
    assert relative_gap(x.numpy(), d.numpy(), h, False).max() <= 1e-9


def textbook_admm(
    x: torch.Tensor, d: torch.Tensor, rho: float, iters: int, positive: bool
) -> torch.Tensor:
    """Over-relaxed scaled ADMM for the Lasso from (z, u) = (0, 0) (Boyd et al. 2011, §6.4)."""
    k = d.shape[1]
    inv = torch.linalg.inv(d.T @ d + rho * torch.eye(k, dtype=d.dtype))
    z = torch.zeros(x.shape[0], k, dtype=x.dtype)
    u = torch.zeros_like(z)
    for _ in range(iters):
        h = (x @ d + rho * (z - u)) @ inv
        w = 1.8 * h + (1 - 1.8) * z + u
        tau = LAM / rho
        z = (w - tau).clamp(min=0) if positive else torch.sign(w) * (w.abs() - tau).clamp(min=0)
        u = w - z
    return z


@pytest.mark.parametrize("positive", [False, True])
def test_admm_dual_start_beats_the_zero_start(positive: bool) -> None:
    """ADMM's dual starts at the projected dual of h = 0, clip(Dᵀx/ρ, ±λ/ρ): after a fixed
    budget its objective is closer to scikit-learn's LARS solution than the same iteration
    from u = 0 (a textbook loop with the same ρ and relaxation)."""
    from sparseland.plugins.pursuit.admm import default_rho

    x, d = dct_patches(200, seed=2)
    ref = lars_reference(x.numpy(), d.numpy(), LAM, positive)
    p_star = objective(x.numpy(), d.numpy(), ref)
    params = {"lam": LAM, "positive": positive, "max_iter": 12, "tol": 0.0}
    dual_start = build("pursuit", "admm", **params)(x, d).numpy()
    plain = textbook_admm(x, d, default_rho(x, LAM), 12, positive).numpy()
    gap_dual = (objective(x.numpy(), d.numpy(), dual_start) - p_star) / p_star
    gap_plain = (objective(x.numpy(), d.numpy(), plain) - p_star) / p_star
    assert gap_dual.mean() < 0.9 * gap_plain.mean()
