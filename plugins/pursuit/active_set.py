"""Active-set Lasso: batched feature-sign search on the support, with KKT re-expansion.

min_h ½‖x − D h‖² + λ‖h‖₁ (optionally h ≥ 0). Lasso codes of natural patches are sparse (~20 of
256 atoms), so the work is done on a per-signal working set S of at most ``max_active`` atoms:
  1. warm start: a few FISTA steps (Beck and Teboulle 2009) guess the support and signs;
  2. S = supp(h) ∪ {j : |(Dᵀ(x − D h))_j| > λ} (the atoms violating the KKT conditions), with
     signs θ = sign(h), or sign of the correlation for entering atoms (feature-sign search,
     Lee, Battle, Raina and Ng 2007, Algorithm 1, steps 2–3);
  3. Newton step on the face: z = G_SS⁻¹(c_S − λ θ_S) by a batched Cholesky of the Gram
     submatrix (exact minimiser of the smooth objective on the orthant face);
  4. line search on the segment h → z over its sign-change breakpoints: the objective is
     q(t) = q₀ + t·bᵀd + ½t²·dᵀG_SS d plus λ‖h + t d‖₁, evaluated exactly at every breakpoint
     and at t = 1; the best point is kept (it never increases the objective);
  5. stop when every signal's duality gap (framework/lasso.py) is ≤ tol × its objective.
All steps are batched over signals (padded working sets); the loop is over rounds only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from sparseland import register_pursuit
from sparseland.errors import check
from sparseland.interfaces import Pursuit, PursuitInfo
from sparseland.operators import LinearOperator
from sparseland.plugins.pursuit._torch import as_torch, back, dense_matrix, soft_threshold
from sparseland.plugins.pursuit.proximal_gradient import LassoPursuitConfig


@dataclass
class ActiveSetConfig(LassoPursuitConfig):
    max_iter: int = 50  # active-set rounds
    tol: float = 1e-6  # stop when every signal's duality gap ≤ tol × its objective
    warm_start_iter: int = 0  # FISTA steps before the first round
    max_enter: int = 4  # atoms that may enter each signal's working set per round

    def __post_init__(self) -> None:
        super().__post_init__()
        check(
            self.warm_start_iter >= 0,
            "warm_start_iter",
            f"must be >= 0, got {self.warm_start_iter}",
        )
        check(self.max_enter >= 1, "max_enter", f"must be >= 1, got {self.max_enter}")


def _fista(
    x_corr: torch.Tensor, gram: torch.Tensor, step: float, lam: float, positive: bool, iters: int
) -> torch.Tensor:
    h = torch.zeros_like(x_corr)
    y, t = h, 1.0
    for _ in range(iters):
        h_new = soft_threshold(y - step * (y @ gram - x_corr), lam * step, positive)
        t_new = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
        y = h_new + ((t - 1.0) / t_new) * (h_new - h)
        h, t = h_new, t_new
    return h


def _objective_and_gap(
    x: torch.Tensor, dictionary: torch.Tensor, h: torch.Tensor, lam: float, positive: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-signal objective P(h), duality gap, and correlations Dᵀ(x − D h) (framework/lasso.py)."""
    residual = x - h @ dictionary.T
    corr = residual @ dictionary
    worst = corr.max(dim=1).values if positive else corr.abs().max(dim=1).values
    scale = torch.clamp(lam / worst.clamp_min(torch.finfo(x.dtype).tiny), max=1.0)
    nu = residual * scale[:, None]
    primal = 0.5 * (residual * residual).sum(1) + lam * h.abs().sum(1)
    dual = 0.5 * (x * x).sum(1) - 0.5 * ((x - nu) ** 2).sum(1)
    return primal, primal - dual, corr


def _working_set(
    h: torch.Tensor,
    corr: torch.Tensor,
    lam: float,
    positive: bool,
    width: int,
    rank: int,
    enter: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices (n × width), signs θ and validity mask of each signal's working set."""
    violation = corr if positive else corr.abs()
    entering = (h == 0) & (violation > lam)
    # Rank: the support first (by |h|), then the entering atoms by their violation.
    score = torch.where(h != 0, 1e30 + h.abs(), torch.where(entering, violation, -1.0))
    top = score.topk(width, dim=1)
    # Entering atoms are capped so that |S| ≤ rank(D): beyond that G_SS is singular.
    support = (h != 0).sum(1, keepdim=True)
    room = support + torch.minimum(torch.clamp(rank - support, min=0), enter[:, None])
    position = torch.arange(width, device=h.device)[None, :]
    valid = (top.values > 0) & ((position < support) | (position < room))
    idx = top.indices
    h_s = h.gather(1, idx)
    theta = torch.where(h_s != 0, torch.sign(h_s), torch.sign(corr.gather(1, idx)))
    if positive:
        theta = torch.ones_like(theta)
    return idx, theta * valid, valid


def _newton_round(
    h: torch.Tensor,
    corr: torch.Tensor,
    gram: torch.Tensor,
    lam: float,
    positive: bool,
    width: int,
    rank: int,
    enter: torch.Tensor,
) -> torch.Tensor:
    idx, theta, valid = _working_set(h, corr, lam, positive, width, rank, enter)
    n, w = idx.shape
    vf = valid.to(h.dtype)
    g_ss = gram[idx[:, :, None], idx[:, None, :]] * (vf[:, :, None] * vf[:, None, :])
    ridge = 100 * torch.finfo(h.dtype).eps * float(torch.diagonal(gram).max())
    eye = torch.eye(w, dtype=h.dtype, device=h.device)
    g_ss = g_ss + eye * (ridge + (1.0 - vf))[:, :, None]  # padding rows: identity
    h_s = h.gather(1, idx) * vf
    # The smooth gradient on S: G_SS h_S − c_S = −corr_S (corr = Dᵀ(x − D h), h supported on S).
    minus_grad = corr.gather(1, idx) * vf
    rhs = (minus_grad + (g_ss @ h_s[:, :, None])[:, :, 0] - lam * theta) * vf
    chol, info = torch.linalg.cholesky_ex(g_ss)
    z = torch.cholesky_solve(rhs[:, :, None], chol)[:, :, 0] * vf
    z = torch.where((info == 0)[:, None], z, h_s)
    d = z - h_s
    # Exact line search over the breakpoints of t ↦ P(h + t d), t ∈ (0, 1].
    slope = -(minus_grad * d).sum(1)  # ∇f(h)ᵀd
    curve = (d * (g_ss @ d[:, :, None])[:, :, 0]).sum(1)  # dᵀ G_SS d
    crossing = (h_s * z < 0) | ((h_s == 0) & (z * theta < 0))
    t_break = torch.where(crossing & (d != 0), -h_s / torch.where(d != 0, d, 1.0), 2.0)
    candidates = torch.cat([t_break, torch.ones(n, 1, dtype=h.dtype, device=h.device)], dim=1)
    candidates = candidates.clamp(max=1.0)
    points = h_s[:, None, :] + candidates[:, :, None] * d[:, None, :]  # n × (w+1) × w
    if positive:
        points = points.clamp(min=0.0)
    l1 = points.abs().sum(2)
    value = candidates * slope[:, None] + 0.5 * candidates**2 * curve[:, None] + lam * l1
    base = lam * h_s.abs().sum(1)
    best_value, best = value.min(dim=1)
    chosen = points[torch.arange(n, device=h.device), best]
    # A breakpoint zeroes its coordinate exactly (feature-sign drops it from the support).
    at_break = t_break == candidates.gather(1, best[:, None])
    chosen = torch.where(at_break, torch.zeros_like(chosen), chosen)
    # One more candidate: z with its sign-inconsistent entries zeroed (drops several at once).
    projected = torch.where(z * theta > 0, z, torch.zeros_like(z))
    e = projected - h_s
    value_p = -(minus_grad * e).sum(1) + 0.5 * (e * (g_ss @ e[:, :, None])[:, :, 0]).sum(1)
    value_p = value_p + lam * projected.abs().sum(1)
    chosen = torch.where((value_p < best_value)[:, None], projected, chosen)
    best_value = torch.minimum(best_value, value_p)
    # Keep h where no candidate improves (a failed factorisation or numerical noise).
    new_s = torch.where((best_value < base)[:, None], chosen, h_s) * vf
    # Padding slots hold atoms with h_j = 0 that stay 0, so writing new_s everywhere is exact.
    return h.scatter(1, idx, new_s)


def _coordinate_step(
    h: torch.Tensor, corr: torch.Tensor, gram: torch.Tensor, lam: float, positive: bool
) -> torch.Tensor:
    """Exact minimisation along the coordinate that moves most (CoD, plugins/pursuit/cod.py)."""
    diag = torch.diagonal(gram)
    move = soft_threshold(corr + diag * h, lam, positive) / diag - h
    j = move.abs().argmax(dim=1, keepdim=True)
    return h.scatter_add(1, j, move.gather(1, j))


@register_pursuit("active_set", config=ActiveSetConfig)
class ActiveSet(Pursuit):
    needs_matrix = True

    def solve(self, x: Any, op: LinearOperator, init: Any | None) -> Any:
        cfg: ActiveSetConfig = self.config  # type: ignore[assignment]
        xt, backend = as_torch(x)
        dictionary = dense_matrix(op, xt)
        m, n_atoms = dictionary.shape
        rank = min(m, n_atoms)
        gram = dictionary.T @ dictionary
        if init is not None:
            h = as_torch(init)[0].to(xt.dtype).clone()
        else:
            step = 1.0 / float(torch.linalg.eigvalsh(gram.double())[-1])
            h = _fista(xt @ dictionary, gram, step, cfg.lam, cfg.positive, cfg.warm_start_iter)
        primal, gap, corr = _objective_and_gap(xt, dictionary, h, cfg.lam, cfg.positive)
        rounds = 0
        enter = torch.full((xt.shape[0],), cfg.max_enter, dtype=torch.long, device=xt.device)
        for rounds in range(1, cfg.max_iter + 1):
            if bool((gap <= cfg.tol * primal).all()):
                rounds -= 1
                break
            # The working set holds the whole support plus up to max_enter entering atoms.
            width = min(n_atoms, int((h != 0).sum(1).max()) + cfg.max_enter)
            candidate = _newton_round(h, corr, gram, cfg.lam, cfg.positive, width, rank, enter)
            new_primal, new_gap, new_corr = _objective_and_gap(
                xt, dictionary, candidate, cfg.lam, cfg.positive
            )
            # Several atoms entering at once can block each other (a sign flips at t = 0): a
            # signal whose Newton round did not improve takes one exact coordinate step on its
            # most promising atom instead (Gregor and LeCun 2010; the objective always decreases
            # and the code stays sparse) and falls back to one entering atom.
            stalled = new_primal >= primal
            if bool(stalled.any()):
                candidate = torch.where(
                    stalled[:, None],
                    _coordinate_step(h, corr, gram, cfg.lam, cfg.positive),
                    candidate,
                )
                new_primal, new_gap, new_corr = _objective_and_gap(
                    xt, dictionary, candidate, cfg.lam, cfg.positive
                )
            enter = torch.where(
                stalled, torch.ones_like(enter), torch.clamp(2 * enter, max=cfg.max_enter)
            )
            h, primal, gap, corr = candidate, new_primal, new_gap, new_corr
        rel = float((gap / primal.clamp_min(torch.finfo(xt.dtype).tiny)).max())
        # rel_change reports the worst relative duality gap gap/P for this solver.
        self.info = PursuitInfo(iterations=rounds, rel_change=rel, duality_gap=float(gap.mean()))
        return back(h, backend)
