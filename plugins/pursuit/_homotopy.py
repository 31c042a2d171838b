"""Warm-started Lasso homotopy, batched over signals (the path engine of ``active_set``).

Given any starting code ĥ (support S, signs θ), the perturbed problem
    min_h ½‖x − D h‖² + λ‖h‖₁ + (1 − ε) uᵀh,
    u_S = (Dᵀ(x − Dĥ))_S − λθ_S,   u_j = (Dᵀ(x − Dĥ))_j off S,
has ĥ as its exact solution at ε = 0 and is the Lasso at ε = 1 (Asif and Romberg 2014, "Sparse
recovery of streaming signals using ℓ1-homotopy", §II). Its solution is piecewise linear in ε:
on a fixed support, h_S(ε) = G_SS⁻¹(c_S − λθ_S − (1 − ε)u_S), so
    dh_S/dε = w = G_SS⁻¹u_S,    dr/dε = u − G_{:,S} w   for r = Dᵀ(x − D h) − (1 − ε)u,
and the path only bends where an atom leaves (h_j reaches 0) or enters (|r_j| reaches λ), as in
LARS (Efron et al. 2004). From a good warm start (ADMM) the path has a few events per signal, so
the exact codes cost a few steps instead of LARS's one step per atom of the support.

G_SS⁻¹ is kept as an explicit inverse on padded slots and updated by the Schur complement when
an atom enters or leaves (bordering; O(|S|²) per event, no per-signal factorisation). The end
point is recomputed exactly by the caller and certified by the duality gap.
"""

from __future__ import annotations

import torch

# An entering atom whose distance to the span of the support is below this (relative, squared)
# would make G_SS singular (a duplicate, or the support already spans the signal space): it is
# kept out, as LARS's "one at a time" condition assumes (Efron et al. 2004, §5).
DEPENDENT = 1e-10


class PathState:
    """Per-signal support in ``width`` slots: atom index, sign and G_SS⁻¹ on the used slots."""

    def __init__(self, h: torch.Tensor, gram: torch.Tensor, width: int) -> None:
        n = h.shape[0]
        self.gram = gram
        support = h != 0
        size = support.sum(1)
        self.width = max(min(width, h.shape[1]), int(size.max()) if n else 0, 1)
        order = torch.sort(support.to(torch.int8), dim=1, descending=True, stable=True).indices
        self.slot_atom = order[:, : self.width].clone()
        position = torch.arange(self.width, device=h.device)[None, :]
        self.used = position < size[:, None]
        self.inverse = self._exact_inverse()

    def _exact_inverse(self) -> torch.Tensor:
        g_ss = self.gram_ss()
        eye = torch.eye(self.width, dtype=g_ss.dtype, device=g_ss.device)
        free = (~self.used).to(g_ss.dtype)
        padded = g_ss + eye * free[:, :, None]
        if not padded.numel():
            return padded
        # G_SS is positive definite (``_regular_start`` checked it): Cholesky costs a third of
        # an LU inverse; a factorisation that fails (rounding) falls back to the LU inverse.
        chol, info = torch.linalg.cholesky_ex(padded)
        inverse = torch.cholesky_inverse(chol)
        failed = info != 0
        if bool(failed.any()):
            inverse[failed] = torch.linalg.inv(padded[failed])
        return inverse * self._mask2()

    def _mask2(self) -> torch.Tensor:
        used = self.used.to(self.gram.dtype)
        return used[:, :, None] * used[:, None, :]

    def gram_ss(self) -> torch.Tensor:
        idx = self.slot_atom
        return self.gram[idx[:, :, None], idx[:, None, :]] * self._mask2()

    def grow(self) -> None:
        """One more free slot for every signal (when some signal's support fills its slots)."""
        n, dev = self.slot_atom.shape[0], self.slot_atom.device
        self.slot_atom = torch.cat(
            [self.slot_atom, torch.zeros(n, 1, dtype=torch.long, device=dev)], 1
        )
        self.used = torch.cat([self.used, torch.zeros(n, 1, dtype=torch.bool, device=dev)], 1)
        self.inverse = torch.nn.functional.pad(self.inverse, (0, 1, 0, 1))
        self.width += 1

    def add(self, rows: torch.Tensor, atoms: torch.Tensor) -> torch.Tensor:
        """Atom ``atoms[i]`` enters signal ``rows[i]`` (bordering: the Schur complement s).
        An atom (numerically) in the span of the support is refused: returns who entered."""
        if (self.used[rows].all(1)).any():
            self.grow()
        inv = self.inverse[rows]
        g = self.gram[self.slot_atom[rows], atoms[:, None]] * self.used[rows]
        v = (inv * g[:, None, :]).sum(2)  # G_SS⁻¹ g
        g_jj = self.gram[atoms, atoms]
        s = g_jj - (g * v).sum(1)
        ok = s > DEPENDENT * g_jj
        rows, atoms, inv, v, s = rows[ok], atoms[ok], inv[ok], v[ok], s[ok]
        slot = (~self.used[rows]).to(torch.int8).argmax(1)
        inv = inv + v[:, :, None] * v[:, None, :] / s[:, None, None]
        k = torch.arange(rows.numel(), device=rows.device)
        inv[k, slot, :] = -v / s[:, None]
        inv[k, :, slot] = -v / s[:, None]
        inv[k, slot, slot] = 1.0 / s
        self.inverse[rows] = inv
        self.slot_atom[rows, slot] = atoms
        self.used[rows, slot] = True
        return ok

    def keep(self, rows: torch.Tensor) -> None:
        """Only the signals selected by ``rows`` go on."""
        self.slot_atom, self.used = self.slot_atom[rows], self.used[rows]
        self.inverse = self.inverse[rows]

    def remove(self, rows: torch.Tensor, slots: torch.Tensor) -> None:
        """The atom in slot ``slots[i]`` leaves signal ``rows[i]`` (downdate of the inverse)."""
        k = torch.arange(rows.numel(), device=rows.device)
        inv = self.inverse[rows]
        col = inv[k, :, slots]
        inv = inv - col[:, :, None] * col[:, None, :] / inv[k, slots, slots][:, None, None]
        inv[k, slots, :] = 0.0
        inv[k, :, slots] = 0.0
        self.inverse[rows] = inv
        self.used[rows, slots] = False


def _regular_start(
    h: torch.Tensor, corr: torch.Tensor, gram: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Signals whose starting support has a singular G_SS (more atoms than the rank allows, or
    dependent atoms) start from h = 0 instead, where the path is LARS itself."""
    if h.shape[0] == 0:
        return h, corr
    support = h != 0
    width = max(int(support.sum(1).max()), 1)
    idx = torch.sort(support.to(torch.int8), dim=1, descending=True, stable=True).indices
    idx = idx[:, :width]
    used = support.gather(1, idx).to(h.dtype)
    g_ss = gram[idx[:, :, None], idx[:, None, :]] * used[:, :, None] * used[:, None, :]
    eye = torch.eye(width, dtype=h.dtype, device=h.device)
    g_ss = g_ss + eye * (1.0 - used)[:, :, None]
    diag = torch.diagonal(g_ss, dim1=1, dim2=2)
    scale = diag.clamp_min(torch.finfo(h.dtype).tiny).rsqrt()
    chol, info = torch.linalg.cholesky_ex(g_ss * scale[:, :, None] * scale[:, None, :])
    # min pivot² of the unit-diagonal Gram bounds its smallest eigenvalue from above
    pivot = torch.diagonal(chol, dim1=1, dim2=2).min(1).values
    singular = (info != 0) | ~(pivot * pivot > 1e-10)
    if not bool(singular.any()):
        return h, corr
    corr = corr.clone()
    corr[singular] = corr[singular] + h[singular] @ gram  # Dᵀx: the correlations at h = 0
    h = h.clone()
    h[singular] = 0.0
    return h, corr


def homotopy(
    h: torch.Tensor,
    corr: torch.Tensor,
    dictionary: torch.Tensor,
    gram: torch.Tensor,
    lam: float,
    positive: bool,
    usable: torch.Tensor,
    max_steps: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Follow the path from the codes ``h`` (with correlations ``corr`` = Dᵀ(x − D h)) to the
    Lasso at ε = 1. Returns the support mask, the signs θ on it, and which signals got there."""
    n, k = h.shape
    dev, dtype = h.device, h.dtype
    h, corr = _regular_start(h, corr, gram)
    support = h != 0
    theta = torch.sign(h)
    if positive:
        theta = torch.where(support, torch.ones_like(theta), theta)
    u = torch.where(support, corr - lam * theta, corr)
    r = corr - u  # λθ on S, 0 off S
    state = PathState(h, gram, int(support.sum(1).max()) + 4 if n else 1)
    eps = torch.zeros(n, dtype=dtype, device=dev)
    rows = torch.arange(n, device=dev)  # the signals still on their path, in local order
    out_support, out_theta = support.clone(), theta.clone()
    done = torch.zeros(n, dtype=torch.bool, device=dev)
    values = h.clone()
    left = torch.full((n,), -1, dtype=torch.long, device=dev)
    blocked_atoms = ~usable[None, :]
    dependent = torch.zeros_like(support)  # atoms refused by ``add`` for each signal
    for _ in range(max_steps):
        if rows.numel() == 0:
            break
        m = rows.numel()
        local = torch.arange(m, device=dev)
        idx, used = state.slot_atom, state.used
        u_s = u.gather(1, idx) * used
        w_s = (state.inverse * u_s[:, None, :]).sum(2)  # G_SS⁻¹ u_S
        w = torch.zeros(m, k, dtype=dtype, device=dev).scatter_add_(1, idx, w_s)
        b = u - (w @ dictionary.T) @ dictionary  # dr/dε = u − G_{:,S} w (0 on S)
        b.masked_fill_(support, 0.0)
        # entering: |r_j + δ b_j| = λ (r_j + δ b_j = λ only, for h ≥ 0)
        up = torch.where(b > 0, (lam - r) / b.clamp_min(1e-300), torch.inf)
        if positive:
            enter_delta = up
        else:
            down = torch.where(b < 0, (-lam - r) / b.clamp_max(-1e-300), torch.inf)
            enter_delta = torch.minimum(up, down)
        blocked = support | blocked_atoms | dependent
        has_left = left >= 0
        if bool(has_left.any()):  # an atom that just left may not re-enter at once
            blocked = blocked.clone()
            blocked[local[has_left], left[has_left]] = True
        enter_delta = enter_delta.clamp_min_(0.0).masked_fill_(blocked, torch.inf)
        enter_best, enter_atom = enter_delta.min(1)
        # leaving: h_j + δ w_j = 0 with δ > 0
        h_s = values.gather(1, idx)
        leave_delta = torch.where(
            used & (h_s * w_s < 0), -h_s / torch.where(w_s != 0, w_s, 1.0), torch.inf
        )
        leave_best, leave_slot = leave_delta.min(1)
        rest = 1.0 - eps
        delta = torch.minimum(torch.minimum(enter_best, leave_best), rest)
        values.add_(delta[:, None] * w)  # w is 0 off S
        r.add_(delta[:, None] * b)
        eps += delta
        finished = delta >= rest
        leaving = ~finished & (leave_best <= enter_best)
        entering = ~finished & ~leaving
        left.fill_(-1)
        if bool(leaving.any()):
            at, slots = local[leaving], leave_slot[leaving]
            atoms = state.slot_atom[at, slots]
            support[at, atoms] = False
            values[at, atoms] = 0.0
            left[at] = atoms
            state.remove(at, slots)
        if bool(entering.any()):
            at, atoms = local[entering], enter_atom[entering]
            entered = state.add(at, atoms)
            dependent[at[~entered], atoms[~entered]] = True
            at, atoms = at[entered], atoms[entered]
            support[at, atoms] = True
            theta[at, atoms] = 1.0 if positive else torch.sign(r[at, atoms])
        if bool(finished.any()):
            out_support[rows[finished]] = support[finished]
            out_theta[rows[finished]] = theta[finished]
            done[rows[finished]] = True
            go = ~finished
            rows, support, theta, values = rows[go], support[go], theta[go], values[go]
            u, r, eps, left, dependent = u[go], r[go], eps[go], left[go], dependent[go]
            state.keep(go)
    if rows.numel():
        out_support[rows], out_theta[rows] = support, theta
    return out_support, out_theta, done
