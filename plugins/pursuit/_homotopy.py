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


class PathState:
    """Per-signal support in ``width`` slots: atom index, sign and G_SS⁻¹ on the used slots."""

    def __init__(self, h: torch.Tensor, gram: torch.Tensor, width: int) -> None:
        n = h.shape[0]
        self.gram = gram
        support = h != 0
        size = support.sum(1)
        self.width = max(width, int(size.max()) if n else 0, 1)
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
        inverse = torch.linalg.inv(padded) if padded.numel() else padded
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

    def add(self, rows: torch.Tensor, atoms: torch.Tensor) -> None:
        """Atom ``atoms[i]`` enters signal ``rows[i]`` (bordering: the Schur complement s)."""
        if (self.used[rows].all(1)).any():
            self.grow()
        slot = (~self.used[rows]).to(torch.int8).argmax(1)
        inv = self.inverse[rows]
        g = self.gram[self.slot_atom[rows], atoms[:, None]] * self.used[rows]
        v = (inv * g[:, None, :]).sum(2)  # G_SS⁻¹ g
        s = self.gram[atoms, atoms] - (g * v).sum(1)
        s = s.clamp_min(1e-12 * self.gram[atoms, atoms].clamp_min(1e-300))
        inv = inv + v[:, :, None] * v[:, None, :] / s[:, None, None]
        k = torch.arange(rows.numel(), device=rows.device)
        inv[k, slot, :] = -v / s[:, None]
        inv[k, :, slot] = -v / s[:, None]
        inv[k, slot, slot] = 1.0 / s
        self.inverse[rows] = inv
        self.slot_atom[rows, slot] = atoms
        self.used[rows, slot] = True

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
    support = h != 0
    theta = torch.sign(h)
    if positive:
        theta = torch.where(support, torch.ones_like(theta), theta)
    u = torch.where(support, corr - lam * theta, corr)
    r = corr - u  # λθ on S, 0 off S
    state = PathState(h, gram, int(support.sum(1).max()) + 4 if n else 1)
    eps = torch.zeros(n, dtype=dtype, device=dev)
    active = torch.arange(n, device=dev)
    done = torch.zeros(n, dtype=torch.bool, device=dev)
    values = h.clone()
    left = torch.full((n,), -1, dtype=torch.long, device=dev)
    for _ in range(max_steps):
        if active.numel() == 0:
            break
        idx, used = state.slot_atom[active], state.used[active]
        u_s = u[active].gather(1, idx) * used
        w_s = (state.inverse[active] * u_s[:, None, :]).sum(2)  # G_SS⁻¹ u_S
        w = torch.zeros(active.numel(), k, dtype=dtype, device=dev).scatter_add(1, idx, w_s)
        a = (w @ dictionary.T) @ dictionary  # G_{:,S} w
        b = u[active] - a
        b = torch.where(support[active], torch.zeros_like(b), b)
        ra = r[active]
        # entering: |r_j + δ b_j| = λ (r_j + δ b_j = λ only, for h ≥ 0)
        up = torch.where(b > 0, (lam - ra) / b.clamp_min(1e-300), torch.inf)
        down = torch.where(b < 0, (-lam - ra) / b.clamp_max(-1e-300), torch.inf)
        enter_delta = up if positive else torch.minimum(up, down)
        blocked = support[active] | ~usable[None, :]
        just_left = torch.zeros_like(blocked).scatter_(1, left[active].clamp_min(0)[:, None], True)
        blocked |= just_left & (left[active] >= 0)[:, None]
        enter_delta = torch.where(blocked, torch.inf, enter_delta.clamp_min(0.0))
        enter_best, enter_atom = enter_delta.min(1)
        # leaving: h_j + δ w_j = 0 with δ > 0
        h_s = values[active].gather(1, idx)
        leave_delta = torch.where(
            used & (h_s * w_s < 0), -h_s / torch.where(w_s != 0, w_s, 1.0), torch.inf
        )
        leave_best, leave_slot = leave_delta.min(1)
        rest = 1.0 - eps[active]
        delta = torch.minimum(torch.minimum(enter_best, leave_best), rest)
        values[active] = torch.where(support[active], values[active] + delta[:, None] * w, 0.0)
        r[active] = ra + delta[:, None] * b
        eps[active] = eps[active] + delta
        finished = delta >= rest
        leaving = ~finished & (leave_best <= enter_best)
        entering = ~finished & ~leaving
        left[active] = -1
        if bool(leaving.any()):
            rows, slots = active[leaving], leave_slot[leaving]
            atoms = state.slot_atom[rows, slots]
            support[rows, atoms] = False
            values[rows, atoms] = 0.0
            left[rows] = atoms
            state.remove(rows, slots)
        if bool(entering.any()):
            rows, atoms = active[entering], enter_atom[entering]
            support[rows, atoms] = True
            sign = torch.ones_like(eps[rows]) if positive else torch.sign(r[rows, atoms])
            theta[rows, atoms] = sign
            state.add(rows, atoms)
        done[active[finished]] = True
        active = active[~finished]
    return support, theta, done
