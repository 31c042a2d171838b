"""Dictionary learners: monotone steps where theory says so, references, ground-truth recovery."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparseland import build
from sparseland.plugins.datasets.synthetic import random_dictionary, sparse_codes
from sparseland.plugins.dictionary.atom_updates import (
    bcd_columns,
    bcd_columns_torch,
    replace_atoms,
    split_atoms,
    swap_atom,
)
from sparseland.plugins.dictionary.ksvd import ksvd_sweep
from sparseland.plugins.dictionary.mod import mod_step
from sparseland.plugins.tasks.recover import recovery_rate


def omp(
    x: torch.Tensor, D: torch.Tensor, n_nonzero: int | None = None, eps: float | None = None
) -> torch.Tensor:
    """Codes by the ``omp`` pursuit: at most ``n_nonzero`` atoms, or until ‖x − D h‖₂ ≤ ``eps``."""
    codes: torch.Tensor = build("pursuit", "omp", k=n_nonzero, eps=eps)(x, D)
    return codes


def problem(seed: int, m: int = 10, k: int = 15, n: int = 400, s: int = 2):
    g = torch.Generator().manual_seed(seed)
    D0 = random_dictionary(m, k, g).double()
    H = sparse_codes(n, k, s, g).double()
    return D0, H, H @ D0.T, g


def fit_error(X: torch.Tensor, D: torch.Tensor, H: torch.Tensor) -> float:
    return float(0.5 * (X - H @ D.T).pow(2).sum())


def perturbed(D0: torch.Tensor, g: torch.Generator, scale: float = 0.3) -> torch.Tensor:
    D = D0 + scale * torch.randn(D0.shape, generator=g, dtype=D0.dtype) / D0.shape[0] ** 0.5
    return D / D.norm(dim=0)


@pytest.mark.parametrize("update", [bcd_columns, bcd_columns_torch])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bcd_column_step_never_increases_the_objective(seed: int, update) -> None:
    """Both paths: numpy on the CPU (bcd_columns here) and the torch kernels GPUs use."""
    D0, _, X, g = problem(seed)
    D = perturbed(D0, g, 1.0)
    H = omp(X + 0.05 * torch.randn(X.shape, generator=g, dtype=X.dtype), D, n_nonzero=3)
    A, B = H.T @ H, X.T @ H
    before = fit_error(X, D, H)
    for _ in range(4):
        update(D, A, B, sweeps=1)
        after = fit_error(X, D, H)
        assert after <= before + 1e-9
        before = after
    assert torch.allclose(D.norm(dim=0), torch.ones(D.shape[1], dtype=D.dtype))


@pytest.mark.parametrize("update", [bcd_columns, bcd_columns_torch])
def test_bcd_keeps_atoms_it_cannot_update(update) -> None:
    """An unused atom (A_jj = 0) and one whose update u_j is 0 stay as they were."""
    D0 = torch.eye(3, dtype=torch.float64)
    A = torch.diag(torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64))  # atom 0 unused
    B = torch.zeros(3, 3, dtype=torch.float64)  # b_1 = D a_1 − A_11 d_1 = 0: u_1 = 0 exactly
    B[:, 2] = torch.tensor([1.0, 1.0, 0.0])  # u_2 = d_2 + (b_2 − d_2) = (1, 1, 0)
    D = D0.clone()
    update(D, A, B, sweeps=1)
    assert torch.equal(D[:, :2], D0[:, :2])
    assert torch.allclose(D[:, 2], torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64) / 2**0.5)


def test_bcd_column_update_is_the_exact_minimiser_on_the_sphere() -> None:
    D0, _, X, g = problem(3)
    D = perturbed(D0, g, 1.0)
    H = omp(X, D, n_nonzero=3)
    A, B = H.T @ H, X.T @ H
    j = int(torch.diagonal(A).argmax())
    single = D.clone()
    # one column only: sweep a copy whose other columns cannot move
    u = single[:, j] + (B[:, j] - single @ A[:, j]) / A[j, j]
    single[:, j] = u / u.norm()
    # brute force over unit vectors, random and near the answer: none fits better
    cand = torch.randn(20000, D.shape[0], generator=g, dtype=D.dtype)
    cand[:10000] = single[:, j] + 0.05 * cand[:10000]
    cand = cand / cand.norm(dim=1, keepdim=True)
    E0 = X - H @ D.T + H[:, j : j + 1] * D[:, j]  # residual without atom j
    errs = 0.5 * (E0.pow(2).sum() - 2 * cand @ (E0.T @ H[:, j]) + H[:, j].pow(2).sum())
    assert float(errs.min()) >= fit_error(X, single, H) - 1e-9


def test_mod_step_is_least_squares_and_normalised_step_does_not_increase_the_fit() -> None:
    D0, _, X, g = problem(4)
    D = perturbed(D0, g, 1.0)
    H = omp(X, D, n_nonzero=3)
    unnormalised = mod_step(H.T @ H, X.T @ H, ridge=0.0)
    reference = np.linalg.lstsq(H.numpy(), X.numpy(), rcond=None)[0].T  # min ‖X − H Dᵀ‖
    np.testing.assert_allclose(unnormalised.numpy(), reference, atol=1e-6)
    learner = build("learner", "mod", replace_unused=False)
    D_new = D.clone()
    learner.update(D_new, {}, learner.statistics(X, H, D))
    norms = unnormalised.norm(dim=0)
    # the codes absorb the column scales: same fit as the unnormalised optimum, ≤ the old fit
    assert fit_error(X, D_new, H * norms) <= fit_error(X, D, H) + 1e-9
    assert torch.allclose(D_new.norm(dim=0), torch.ones(D.shape[1], dtype=D.dtype))


def test_ksvd_sweep_never_increases_the_error_and_converges_to_the_svd_update() -> None:
    D0, _, X, g = problem(5)
    D = perturbed(D0, g, 1.0)
    H = omp(X, D, n_nonzero=3)
    support = H != 0
    before = fit_error(X, D, H)
    R = ksvd_sweep(D, X, H, power_iterations=1)
    assert fit_error(X, D, H) <= before + 1e-9
    assert torch.allclose(R, X - H @ D.T)
    assert torch.equal(H != 0, support)  # codes change only on their support
    # many power steps on one atom = the leading singular pair of its residual (exact K-SVD)
    j = 0
    idx = H[:, j].nonzero().squeeze(1)
    E = (X - H @ D.T)[idx] + H[idx, j][:, None] * D[:, j]
    Ds, Hs = D.clone(), H.clone()
    only_j = torch.zeros_like(Hs, dtype=torch.bool)
    only_j[:, j] = True
    Hs_other = Hs.masked_fill(only_j, 0.0)
    ksvd_sweep(Ds[:, :1], X - Hs_other @ Ds.T, Hs[:, :1], power_iterations=200)
    _, sv, vt = torch.linalg.svd(E, full_matrices=False)
    assert abs(float(Ds[:, 0] @ vt[0])) == pytest.approx(1.0, abs=1e-8)
    assert float(Hs[idx, 0].norm()) == pytest.approx(float(sv[0]), rel=1e-8)


def test_replacement_picks_the_worst_candidates_whatever_the_split() -> None:
    g = torch.Generator().manual_seed(0)
    cands = torch.randn(16, 5, generator=g)
    res = torch.rand(16, generator=g)
    mask = torch.tensor([False, True, False, True])
    one = torch.zeros(5, 4)
    one[0, :] = 1.0
    two = one.clone()
    replace_atoms(one, mask, cands, res)
    perm = torch.randperm(16, generator=g)  # another process order
    replace_atoms(two, mask, cands[perm], res[perm])
    assert torch.equal(one, two)
    worst = res.argsort(descending=True)[:2]
    expected = cands[worst].T / cands[worst].T.norm(dim=0)
    assert torch.allclose(one[:, [1, 3]], expected)
    untouched = torch.zeros(5, 2)
    untouched[0, :] = 1.0
    assert torch.equal(one[:, [0, 2]], untouched)


def test_unused_atom_is_replaced_by_a_badly_coded_signal() -> None:
    D0, _, X, _ = problem(6)
    learner = build("learner", "bcd")
    D = D0.clone()
    D[:, 3] = -D[:, 2]  # a duplicate nobody will use
    D[:, 4] = D0[:, 4]
    H = omp(X, D, n_nonzero=2)
    stats = learner.merge_statistics(None, learner.statistics(X, H, D))
    learner.update(D, {}, stats)
    assert float((D[:, 3] @ D[:, 2]).abs()) < 0.99
    assert torch.allclose(D.norm(dim=0), torch.ones(D.shape[1], dtype=D.dtype))


@pytest.mark.parametrize(
    ("name", "options", "epochs", "batch"),
    [
        ("bcd", {}, 10, None),
        ("mod", {}, 10, None),
        ("ksvd", {}, 10, None),
        ("online", {"forget_rho": 10.0}, 10, 100),
        ("gradient", {"lr": 1.0}, 20, 100),
    ],
)
def test_learner_recovers_the_true_dictionary_from_a_nearby_start(
    name: str, options: dict[str, float], epochs: int, batch: int | None
) -> None:
    """Clean signals, start 1 − |cos| ≈ 0.05 away from every true atom: each learner must land
    on the truth (global recovery from random starts is benchmarks/learners.py's job)."""
    D0, _, X, g = problem(7, m=16, k=20, n=600)
    D = perturbed(D0, g, 0.3)
    assert recovery_rate(D0, D) < 0.2
    learner = build("learner", name, **options)
    state = learner.init_state(D)
    for _ in range(epochs):
        for xb in X.split(batch) if batch else [X]:
            stats = learner.statistics(xb, omp(xb, D, n_nonzero=2), D)
            if learner.accumulate_epoch:
                stats = learner.merge_statistics(None, stats)
            learner.update(D, state, stats)
    assert recovery_rate(D0, D) == 1.0
    assert torch.allclose(D.norm(dim=0), torch.ones(D.shape[1], dtype=D.dtype))


def test_batch_omp_matches_scikit_learn() -> None:
    from sklearn.linear_model import orthogonal_mp

    D0, _, X, g = problem(8, m=20, k=40, s=4)
    X = X + 0.05 * torch.randn(X.shape, generator=g, dtype=X.dtype)
    ref = orthogonal_mp(D0.numpy(), X.numpy().T, n_nonzero_coefs=4).T
    np.testing.assert_allclose(omp(X, D0, n_nonzero=4).numpy(), ref, atol=1e-8)
    eps = 0.3
    ref = orthogonal_mp(D0.numpy(), X.numpy().T, tol=eps**2).T
    codes = omp(X, D0, eps=eps)
    small = X.norm(dim=1) <= eps  # already within ε: no atom (scikit-learn still takes one)
    assert bool((codes[small] == 0).all())
    np.testing.assert_allclose(codes[~small].numpy(), ref[~small.numpy()], atol=1e-8)
    assert bool(((X - codes @ D0.T).norm(dim=1) <= eps + 1e-9).all())


def mixed_atom_start(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The stable local minimum of the K-SVD protocol: the true dictionary with atom 0 a mix
    of true atoms 0 and 1, and atom 1 a random junk direction. Returns (truth, start, X)."""
    D0, _, X, g = problem(seed, m=16, k=20, n=800, s=2)
    D = D0.clone()
    D[:, 0] = D0[:, 0] + D0[:, 1]
    D[:, 1] = torch.randn(16, generator=g, dtype=D.dtype)
    return D0, D / D.norm(dim=0), X


def test_split_direction_is_what_the_mixed_atom_misses() -> None:
    D0, D, X = mixed_atom_start(1)
    keep = [j for j in range(D.shape[1]) if j != 1]  # the junk atom, to replace, is unused
    H = torch.zeros(X.shape[0], D.shape[1], dtype=X.dtype)
    H[:, keep] = omp(X, D[:, keep], n_nonzero=2)
    replace = torch.zeros(D.shape[1], dtype=torch.bool)
    replace[1] = True
    done = split_atoms(D, replace, X - H @ D.T, H)
    assert done.tolist() == [1]
    # the new atom lies in span(a, b) and is far from the mixed atom: together they span it
    a_b = torch.linalg.qr(D0[:, :2]).Q
    assert float((a_b.T @ D[:, 1]).norm()) > 0.9
    assert float((D[:, 0] @ D[:, 1]).abs()) < 0.35
    assert float(D[:, 1].norm()) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_swap_moves_the_junk_atom_of_a_mixed_minimum_and_leaves_the_truth(seed: int) -> None:
    D0, D, X = mixed_atom_start(seed)
    H = omp(X, D, n_nonzero=2)
    assert swap_atom(D, X - H @ D.T, H, 1.0).nonzero().squeeze(1).tolist() == [1]
    assert not bool(swap_atom(D, X - H @ D.T, H, 0.0).any())  # ratio 0: never
    noisy = X + 0.05 * torch.randn(X.shape, generator=torch.Generator().manual_seed(0))
    for signals in (X, noisy):
        H0 = omp(signals, D0, n_nonzero=2)
        assert not bool(swap_atom(D0, signals - H0 @ D0.T, H0, 1.0).any())


@pytest.mark.parametrize(
    ("name", "options", "batch"),
    [
        ("ksvd", {}, None),
        ("online", {"forget_rho": 10.0}, 100),
    ],
)
def test_learner_leaves_the_mixed_atom_minimum(
    name: str, options: dict[str, float], batch: int | None
) -> None:
    """Clean signals from the mixed-atom minimum: replacement must find both true atoms."""
    D0, D, X = mixed_atom_start(1)
    assert recovery_rate(D0, D) == pytest.approx(0.9)
    learner = build("learner", name, **options)
    state = learner.init_state(D)
    for _ in range(30):
        for xb in X.split(batch) if batch else [X]:
            stats = learner.statistics(xb, omp(xb, D, n_nonzero=2), D)
            if learner.accumulate_epoch:
                stats = learner.merge_statistics(None, stats)
            learner.update(D, state, stats)
    assert recovery_rate(D0, D) == 1.0
    assert torch.allclose(D.norm(dim=0), torch.ones(D.shape[1], dtype=D.dtype))
