"""Exact Lasso: feature-sign rounds from a starting code make it exact, a batched homotopy
finishes the few signals they leave, and the duality gap certifies every signal.

min_h ½‖x − D h‖² + λ‖h‖₁ (optionally h ≥ 0). At a solution with support S and signs θ,
    h_S = G_SS⁻¹(c_S − λ θ_S),   G = DᵀD, c = Dᵀx,
and |(Dᵀ(x − D h))_j| ≤ λ off S (Osborne, Presnell and Turlach 2000, eq. 2.4; the system LARS
solves at each kink, Efron et al. 2004). The solver:
  1. a starting code: h = 0, or ``warm_start_iter`` ADMM iterations in float32
     (plugins/pursuit/admm.py), an exactly sparse code with nearly the optimal support;
  2. feature-sign rounds from there (Lee et al. 2007): the exact solve on the support with its
     signs, a line search to the first sign change, the most violating atom in, with G_SS⁻¹
     updated by bordering. Two implementations (``kernel``):
       * compiled (the CPU default; plugins/pursuit/_feature_sign_compiled.py): one signal
         at a time in numba-compiled loops, the signals split between as many threads as
         torch uses, from h = 0 (the rounds then trace the LARS path, an atom per round);
       * batched (any device; plugins/pursuit/_feature_sign.py): every signal's round in one
         set of torch kernels, from ADMM's code (on 8×8 natural patches 99.8% of the signals
         reach a KKT point within 10 rounds, 93% within three). On the CPU the warm start
         splits the signals between Python threads of one-thread kernels; the rounds run in
         one thread, with a second one factorising the next groups of signals;
  3. the signals not done yet: homotopy from their code to the Lasso
     (plugins/pursuit/_homotopy.py), one step per atom that enters or leaves, then the exact
     solve on the support the path ends with (a batched Cholesky of G_SS, signals grouped by
     |S|);
  4. a signal is done once its duality gap (Lasso.duality_gap) is ≤ tol × its objective: the
     result is certified, not just converged. A signal that is not (rounding on a degenerate
     path) takes another pass from its best point; after ``passes`` the call warns.
The exact part runs in float64 whatever the signals' dtype (float16/bfloat16 Cholesky factors
are useless); codes come back in the signals' dtype. All-zero atoms never enter a support
(their correlation is 0).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any

import torch

from sparseland import convergence, option, register_pursuit
from sparseland.errors import check
from sparseland.interfaces import PursuitInfo
from sparseland.operators import LinearOperator, MatrixOperator
from sparseland.plugins.pursuit import _feature_sign
from sparseland.plugins.pursuit._homotopy import homotopy
from sparseland.plugins.pursuit._torch import (
    as_torch,
    back,
    check_kernel,
    compiled_kernel,
    dense_matrix,
    one_thread,
    size_buckets,
    thread_shares,
)
from sparseland.plugins.pursuit.admm import Admm, AdmmConfig, default_rho
from sparseland.plugins.pursuit.proximal_gradient import LassoPursuit, LassoPursuitConfig
from sparseland.problems import Lasso

WORK = torch.float64
ROUNDING = 64 * torch.finfo(WORK).eps  # gap below this × ½‖x‖²: certified (rounding)
BUCKET = 8  # working sets are padded to a multiple of this within each group of signals
GROUPED = 2048  # the homotopy groups signals by support size only above this many
BATCHED_WARM_START, BATCHED_ROUNDS = 30, 10
COMPILED_ROUNDS = 8  # × min(m, k): a path from h = 0 adds and drops each atom a few times


@dataclass
class ActiveSetConfig(LassoPursuitConfig):
    max_iter: int = option(1000, "homotopy steps per pass (each atom entering or leaving is one)")
    passes: int = option(3, "homotopy passes, each from the previous pass's end point")
    tol: float = option(1e-9, "certified when the duality gap is ≤ tol × the objective")
    kernel: str = option(
        "auto",
        "the feature-sign rounds: 'compiled' (one signal at a time, compiled with numba; CPU "
        "only), 'batched' (torch, many signals per kernel; any device) or 'auto' (compiled on "
        "the CPU, batched elsewhere)",
    )
    warm_start_iter: int | None = option(
        None,
        "ADMM iterations for the starting support (0: start from h = 0; None: 0 for the "
        "compiled rounds, 30 for the batched ones)",
    )
    rounds: int | None = option(
        None,
        "feature-sign rounds before the homotopy takes the signals that are not done (None: "
        "8·min(m, k) for the compiled rounds, each of which adds or drops one atom; 10 for the "
        "batched ones, which start from ADMM's support)",
    )
    cpu_block: int = option(
        16384,
        "on the CPU, signals are solved in blocks of this many rows (warm start, rounds and "
        "polish), which bounds the memory of the per-signal G_SS⁻¹; 0, and any GPU: the whole "
        "batch",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_kernel(self.kernel)
        check(
            self.warm_start_iter is None or self.warm_start_iter >= 0,
            "warm_start_iter",
            f"must be >= 0 or None, got {self.warm_start_iter}",
        )
        check(self.passes >= 1, "passes", f"must be >= 1, got {self.passes}")
        check(
            self.rounds is None or self.rounds >= 0,
            "rounds",
            f"must be >= 0 or None, got {self.rounds}",
        )
        check(self.cpu_block >= 0, "cpu_block", f"must be >= 0, got {self.cpu_block}")


def resolved(cfg: ActiveSetConfig, device: torch.device, shape: tuple[int, int]) -> ActiveSetConfig:
    """The config with ``kernel``, ``warm_start_iter`` and ``rounds`` decided for signals on
    ``device`` and a dictionary of ``shape`` (m, k)."""
    compiled = compiled_kernel("active_set", cfg.kernel, device)
    warm = cfg.warm_start_iter
    rounds = cfg.rounds
    return replace(
        cfg,
        kernel="compiled" if compiled else "batched",
        warm_start_iter=(0 if compiled else BATCHED_WARM_START) if warm is None else warm,
        rounds=(COMPILED_ROUNDS * min(shape) if compiled else BATCHED_ROUNDS)
        if rounds is None
        else rounds,
    )


class _Problem:
    """The Lasso data in float64: D, G = DᵀD, λ, the sign constraint, and the usable atoms."""

    def __init__(self, dictionary: torch.Tensor, lasso: Lasso) -> None:
        self.dictionary = dictionary
        self.operator = MatrixOperator(dictionary)
        self.gram = dictionary.T @ dictionary
        self.lasso, self.lam, self.positive = lasso, lasso.lam, lasso.positive
        diag = torch.diagonal(self.gram)
        self.usable = diag > 0  # an all-zero atom can never help (and would make G_SS singular)
        self.diag = torch.where(self.usable, diag, torch.ones_like(diag))
        self.ridge = 100 * torch.finfo(WORK).eps * float(diag.max()) if diag.numel() else 0.0
        self.rounds = _feature_sign.Problem(
            dictionary, self.gram, self.lam, self.positive, self.usable
        )

    def evaluate(
        self, x: torch.Tensor, h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-signal objective P(h), duality gap and correlations Dᵀ(x − D h)."""
        primal, gap, corr = self.lasso.objective_and_gap(x, self.operator, h)
        return primal, gap, corr

    def violation(self, corr: torch.Tensor) -> torch.Tensor:
        v = corr if self.positive else corr.abs()
        return torch.where(self.usable, v, torch.zeros_like(v))


def _newton_target(
    problem: _Problem,
    c_s: torch.Tensor,
    g_ss: torch.Tensor,
    theta: torch.Tensor,
    vf: torch.Tensor,
    h_s: torch.Tensor,
) -> torch.Tensor:
    """z = G_SS⁻¹(c_S − λθ_S), c = Dᵀx: a batched Cholesky solve (h_S where it fails)."""
    rhs = (c_s - problem.lam * theta) * vf
    chol, info = torch.linalg.cholesky_ex(g_ss)
    z = torch.cholesky_solve(rhs[:, :, None], chol)[:, :, 0] * vf
    return torch.where((info == 0)[:, None], z, h_s)


def _padded_gram(problem: _Problem, idx: torch.Tensor, vf: torch.Tensor) -> torch.Tensor:
    """G_SS on the valid slots (+ a rounding-level ridge), the identity on the padding."""
    g_ss = problem.gram[idx[:, :, None], idx[:, None, :]] * (vf[:, :, None] * vf[:, None, :])
    eye = torch.eye(idx.shape[1], dtype=WORK, device=idx.device)
    return g_ss + eye * (problem.ridge + (1.0 - vf))[:, :, None]


def _groups(size: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
    """Rows grouped by working-set size (to a multiple of BUCKET), with each group's width."""
    return [(rows, max(1, int(size[rows].max()))) for rows, _ in size_buckets(size, BUCKET)]


def exact_on_support(
    problem: _Problem, c: torch.Tensor, support: torch.Tensor, theta: torch.Tensor
) -> torch.Tensor:
    """h_S = G_SS⁻¹(c_S − λθ_S) and 0 off S (the Lasso solution if S and θ are right)."""
    out = torch.zeros_like(c)
    size = support.sum(1)
    for rows, width in _groups(size):
        width = min(c.shape[1], width)
        idx = support[rows].to(torch.int8).topk(width, dim=1).indices
        vf = support[rows].gather(1, idx).to(WORK)
        g_ss = _padded_gram(problem, idx, vf)
        th = theta[rows].gather(1, idx) * vf
        z = _newton_target(problem, c[rows].gather(1, idx), g_ss, th, vf, torch.zeros_like(vf))
        out[rows] = torch.zeros_like(c[rows]).scatter(1, idx, z * vf)
    return out


def _follow_path(
    x: torch.Tensor,
    problem: _Problem,
    h: torch.Tensor,
    primal: torch.Tensor,
    gap: torch.Tensor,
    corr: torch.Tensor,
    pending: torch.Tensor,
    cfg: ActiveSetConfig,
    from_zero: bool = False,
) -> None:
    """Homotopy from h (or from 0: LARS) to the Lasso on the ``pending`` signals, then the
    exact solve on the support it ends with; a signal keeps the result if its objective
    decreases (in place). Signals are grouped by support size, so each group's inverses pad to
    their own width."""
    # grouping pays for its extra step loops only with many signals
    groups = (
        _groups((h[pending] != 0).sum(1))
        if pending.numel() > GROUPED and not from_zero
        else [(torch.arange(pending.numel(), device=h.device), 0)]
    )
    for rows, _ in groups:
        sub = pending[rows]
        start, start_corr = h[sub], corr[sub]
        if from_zero:  # LARS: the path from h = 0, where the correlations are Dᵀx
            start, start_corr = torch.zeros_like(start), x[sub] @ problem.dictionary
        support, theta, _ = homotopy(
            start,
            start_corr,
            problem.dictionary,
            problem.gram,
            problem.lam,
            problem.positive,
            problem.usable,
            cfg.max_iter,
        )
        c = x[sub] @ problem.dictionary
        candidate = exact_on_support(problem, c, support, theta)
        new_p, new_g, new_c = problem.evaluate(x[sub], candidate)
        better = new_p < primal[sub]
        keep = sub[better]
        h[keep], primal[keep], gap[keep], corr[keep] = (
            candidate[better],
            new_p[better],
            new_g[better],
            new_c[better],
        )


def _warm_start(cfg: ActiveSetConfig, problem: Lasso, x: torch.Tensor) -> Admm | None:
    """The ADMM that gives the starting codes (ρ from the whole batch, so blocks agree)."""
    if not cfg.warm_start_iter:  # 0 (``resolved`` decides None)
        return None
    return Admm(
        AdmmConfig(
            lam=problem.lam,
            positive=problem.positive,
            max_iter=cfg.warm_start_iter,
            tol=0.0,
            check_every=cfg.warm_start_iter,
            compute_gap=False,
            rho=default_rho(x, problem.lam),
        )
    )


def polish(
    x: torch.Tensor,
    problem: _Problem,
    h: torch.Tensor,
    cfg: ActiveSetConfig,
    known: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Homotopy passes until every signal is certified; ``known``: (signals whose objective
    and gap are already computed, those objectives, those gaps). Returns h, P(h), the gap, the
    uncertified signals and the passes run."""
    corr: torch.Tensor | None = None
    if known is None:
        primal, gap, corr = problem.evaluate(x, h)
    else:
        done, primal, gap = known
        rest = (~done).nonzero()[:, 0]
        if rest.numel():
            primal[rest], gap[rest], _ = problem.evaluate(x[rest], h[rest])
    # The gap is a difference of terms of size ½‖x‖²: below ROUNDING·½‖x‖² it is rounding.
    floor = ROUNDING * 0.5 * (x * x).sum(1)
    pending = (gap > cfg.tol * primal + floor).nonzero()[:, 0]
    if corr is None and pending.numel():  # the homotopy starts from the correlations Dᵀ(x − D h)
        corr = torch.zeros_like(h)
        corr[pending] = problem.evaluate(x[pending], h[pending])[2]
    passes = 0
    while pending.numel() and passes < cfg.passes:
        passes += 1
        # A pass that ends uncertified (a degenerate path: ties, near-dependent atoms) is
        # followed by one from h = 0, a different path, then again from the best point.
        assert corr is not None
        _follow_path(x, problem, h, primal, gap, corr, pending, cfg, from_zero=passes == 2)
        pending = pending[gap[pending] > cfg.tol * primal[pending] + floor[pending]]
    unsolved = torch.zeros_like(gap, dtype=torch.bool)
    unsolved[pending] = True
    return h, primal, gap, unsolved, passes


def _start(
    x64: torch.Tensor,
    fast: torch.Tensor,
    h0: torch.Tensor | None,
    admm: Admm | None,
    fast_op: MatrixOperator | None,
    problem: _Problem,
    rows: slice,
) -> torch.Tensor:
    """The starting codes of the signals ``rows``: ``init`` (float64), ADMM's (in its float32),
    or zero."""
    if h0 is not None:
        start = h0[rows].clone()
    elif admm is not None and fast_op is not None:
        start = admm.solve(fast[rows], fast_op, None)
    else:
        start = x64.new_zeros(x64[rows].shape[0], problem.dictionary.shape[1])
    if problem.positive:
        start = start.clamp(min=0.0)
    return torch.where(problem.usable, start, torch.zeros_like(start))


def exact_codes(
    x64: torch.Tensor,
    problem: _Problem,
    cfg: ActiveSetConfig,
    start: Callable[[slice], torch.Tensor] | None,
    rows: slice,
    threads: int,
) -> tuple[list[torch.Tensor], int]:
    """Warm start (None: h = 0), feature-sign rounds and the homotopy polish for the signals
    ``rows``: [h, P(h), gap, uncertified] and the rounds plus passes run.

    On the CPU the warm start (ADMM: a few large matrix products) splits the signals between
    ``threads`` Python threads, each running one-thread kernels; the rounds and the polish
    (thousands of small kernels) run in one thread. Python threads share one interpreter lock,
    which torch releases inside each kernel: threads of large kernels run side by side, threads
    of small ones mostly wait for each other's lock (on 10,000 patches, the rounds took as long
    on two threads as on one). One-thread kernels also mean no stage waits for an intra-op
    thread that the scheduler took away, so a loaded machine costs no more than its lost
    share."""
    whole = slice(rows.start or 0, (rows.start or 0) + x64[rows].shape[0])
    x = x64[whole]
    parts = thread_shares(x.shape[0], threads, x64.device)
    assert cfg.rounds is not None  # decided by ``resolved``
    compiled = cfg.rounds > 0 and x.shape[0] > 0 and cfg.kernel == "compiled"
    h: torch.Tensor | None = None
    if start is None and not compiled:
        h = x.new_zeros(x.shape[0], problem.dictionary.shape[1])
    elif start is not None and len(parts) == 1:
        h = start(whole)
    elif start is not None:
        shifted = [slice(whole.start + p.start, whole.start + p.stop) for p in parts]
        with ThreadPoolExecutor(len(parts)) as pool:
            h = torch.cat(list(pool.map(start, shifted)))
    ran, known = 0, None
    if compiled:  # from h (None: from h = 0)
        from sparseland.plugins.pursuit import _feature_sign_compiled

        h, done, primal, gap, ran = _feature_sign_compiled.feature_sign(
            problem.rounds, x, h, cfg.rounds, threads
        )
        known = (torch.ones_like(done), primal, gap)  # every signal's gap is computed
    assert h is not None
    if cfg.rounds > 0 and h.shape[0] > 0 and not compiled:
        with ThreadPoolExecutor(1) if len(parts) > 1 else nullcontext() as helper:
            h, done, finished, primal, gap = _feature_sign.feature_sign(
                problem.rounds, x, h, cfg.rounds, helper
            )
        ran, known = len(finished), (done, primal, gap)
    *out, used = polish(x, problem, h.to(WORK), cfg, known)
    return out, ran + used


# the pursuit skeleton (dense matrix, torch inside, the caller's arrays outside), as in admm
@register_pursuit("active_set", config=ActiveSetConfig)
class ActiveSet(LassoPursuit):
    needs_matrix = True

    def solve(self, x: Any, op: LinearOperator, init: Any | None) -> Any:
        xt, backend = as_torch(x)
        # The warm start in float32 (2.2× faster than float64 here): it only proposes a
        # support; the rounds end each signal at a KKT point solved in float64, the unique
        # solution unless the problem is degenerate, whatever the start.
        fast = xt.float()
        x64 = xt.to(WORK)
        problem = _Problem(dense_matrix(op, x64), self.problem)
        m, k = problem.dictionary.shape
        cfg = resolved(self.config, xt.device, (m, k))  # type: ignore[arg-type]
        h0 = None if init is None else as_torch(init)[0].to(WORK)
        admm = _warm_start(cfg, self.problem, fast) if h0 is None else None
        fast_op = MatrixOperator(dense_matrix(op, fast)) if admm is not None else None
        n = x64.shape[0]
        block = cfg.cpu_block if cfg.cpu_block > 0 and xt.device.type == "cpu" else n
        threads = torch.get_num_threads()
        parts, passes = [], 0

        def warm(part: slice) -> torch.Tensor:
            return _start(x64, fast, h0, admm, fast_op, problem, part)

        start = None if h0 is None and admm is None else warm  # None: h = 0

        for first in range(0, max(n, 1), max(block, 1)):
            rows = slice(first, first + block)
            with one_thread(x64.device):  # thousands of small kernels: see ``one_thread``
                part, used = exact_codes(x64, problem, cfg, start, rows, threads)
            parts.append(part)
            passes = max(passes, used)
        h, primal, gap, unsolved = (
            parts[0] if len(parts) == 1 else [torch.cat(c) for c in zip(*parts, strict=True)]
        )
        relative = gap / primal.clamp_min(torch.finfo(WORK).tiny)
        if bool(unsolved.any()) and not convergence.recording():  # a run reports it once
            warnings.warn(
                f"active_set: {float(unsolved.double().mean()):.1%} of the signals stopped at "
                f"max_iter={cfg.max_iter} steps × passes={cfg.passes} with a relative duality gap "
                f"above tol={cfg.tol} (worst {float(relative.max()):.1e}): raise max_iter; a gap "
                "near tol means ill-conditioned supports (near-dependent atoms), where tol is "
                "below rounding",
                RuntimeWarning,
                stacklevel=3,
            )
        worst = float(relative.max()) if relative.numel() else 0.0
        mean_gap = float(gap.mean()) if gap.numel() else math.nan
        # iterations: feature-sign rounds plus homotopy passes (the most any block ran);
        # rel_change reports the worst relative duality gap gap/P for this solver.
        self.info = PursuitInfo(
            iterations=passes,
            rel_change=worst,
            duality_gap=mean_gap,
            converged_fraction=1.0 - float(unsolved.double().mean()) if unsolved.numel() else 1.0,
            max_gap=float(gap.max()) if gap.numel() else 0.0,
        )
        return back(h.to(xt.dtype), backend)
