"""Batched feature-sign rounds (the fast path of ``active_set``): from a nearby code to the Lasso.

Feature-sign search (Lee, Battle, Raina and Ng 2007, "Efficient sparse coding algorithms",
Algorithm 1) keeps an active set S with signs θ and alternates
  * the feature-sign step: the minimiser of ½‖x − D h‖² + λθᵀh on S,
        z_S = G_SS⁻¹(c_S − λθ_S),   G = DᵀD, c = Dᵀx,
    then a line search from the current code to z that stops at the first sign change, so the
    objective decreases (up to the first crossing it equals this quadratic, which decreases
    along the segment), and the atom that reaches zero leaves S;
  * once z keeps its signs (the optimum on S): the optimality check off S, where the atom
    with the largest |(Dᵀ(x − D h))_j| > λ enters with the sign of that correlation.
A code that keeps its signs and has no violator satisfies the Lasso's KKT conditions (Osborne,
Presnell and Turlach 2000, eq. 2.4): it is done. Each round is batched over signals; G_SS⁻¹ is
kept explicitly per signal and updated by bordering (one atom in) or its Schur downdate (one
atom out), O(|S|²) per round and no factorisation after the first. An entering atom that is
(numerically) in the span of S swaps with one of S instead (a pivot that keeps the residual and
lowers ‖h‖₁). Signals are grouped by
support size, so each group pads to its own width. Signals that are not done after the
rounds, or where neither works for the entering atom, are left to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparseland.plugins.pursuit._torch import size_buckets

BUCKET = 4  # groups pad supports to a multiple of this, with at least SPARE free slots
SPARE = 2
DEPENDENT = 1e-10  # an atom whose squared distance to span(D_S) is below this × ‖d_j‖² is refused


@dataclass
class Problem:
    """The Lasso data the rounds need (float64): D, G = DᵀD (flattened too), λ, h ≥ 0 or not,
    and the atoms that may enter (not all-zero)."""

    dictionary: torch.Tensor
    gram: torch.Tensor
    lam: float
    positive: bool
    usable: torch.Tensor
    kkt_tol: float = 1e-10

    def __post_init__(self) -> None:
        # G bordered by a zero atom k that fills the unused slots, so that G_SS of a padded
        # support is zero on the padding without masking
        self.gram_ext = torch.nn.functional.pad(self.gram, (0, 1, 0, 1))
        self.gram_flat = self.gram_ext.reshape(-1)
        self.blocked = ~self.usable


class _Group:
    """Signals of similar support size: atoms, coefficients and signs in ``width`` slots, c on
    them, and G_SS⁻¹ (zero on the unused slots)."""

    def __init__(
        self,
        problem: Problem,
        rows: torch.Tensor,
        c: torch.Tensor,
        h: torch.Tensor,
        width: int,
    ) -> None:
        k = h.shape[1]
        self.k = k
        # c and the codes get a zero column k: the unused slots hold atom k
        self.problem, self.rows = problem, rows
        self.c = torch.nn.functional.pad(c, (0, 1))
        support = h != 0
        size = support.sum(1)
        m = rows.numel()
        nz = support.nonzero()
        first = size.cumsum(0) - size
        slot = torch.arange(nz.shape[0], device=h.device) - first[nz[:, 0]]
        self.atom = torch.full((m, width), k, dtype=torch.long, device=h.device)
        self.atom[nz[:, 0], slot] = nz[:, 1]
        self.used = torch.arange(width, device=h.device)[None, :] < size[:, None]
        self.val = torch.nn.functional.pad(h, (0, 1)).gather(1, self.atom)
        if problem.positive:
            self.theta = self.used.to(h.dtype)
        else:
            self.theta = torch.sign(self.val)
        self.cs = self.c.gather(1, self.atom)
        self.inv = torch.empty(m, width, width, dtype=h.dtype, device=h.device)

    @property
    def width(self) -> int:
        return int(self.atom.shape[1])

    def gram_ss(self, sel: torch.Tensor | None = None) -> torch.Tensor:
        """G_SS on the used slots, the identity on the others."""
        atom = self.atom if sel is None else self.atom[sel]
        used = self.used if sel is None else self.used[sel]
        w = self.width
        flat = (atom * (self.k + 1))[:, :, None] + atom[:, None, :]
        g = self.problem.gram_flat.index_select(0, flat.view(-1)).view(-1, w, w)
        g.diagonal(dim1=1, dim2=2).add_((~used).to(g.dtype))
        return g

    def factorise(self) -> None:
        """G_SS⁻¹ by Cholesky; an atom whose pivot fails or is below DEPENDENT (relative: it
        is numerically in the span of the atoms before it) leaves S until the rest factorises."""
        todo: torch.Tensor | None = None  # None: every row
        while todo is None or todo.numel():
            g = self.gram_ss(todo)
            chol, info = torch.linalg.cholesky_ex(g)
            pivot = torch.diagonal(chol, dim1=1, dim2=2)
            small = pivot * pivot <= DEPENDENT * torch.diagonal(g, dim1=1, dim2=2)
            ok = (info == 0) & ~small.any(1)
            if todo is None and bool(ok.all()):
                inv = torch.cholesky_inverse(chol)
                inv.diagonal(dim1=1, dim2=2).sub_((~self.used).to(inv.dtype))
                self.inv = inv
                return
            rows = torch.arange(self.rows.numel(), device=info.device) if todo is None else todo
            inv = torch.cholesky_inverse(chol[ok])
            inv.diagonal(dim1=1, dim2=2).sub_((~self.used[rows[ok]]).to(inv.dtype))
            self.inv[rows[ok]] = inv
            failed = info[~ok] - 1
            first_small = small[~ok].to(torch.int8).argmax(1)
            slot = torch.where(failed >= 0, failed, first_small)
            slot = torch.minimum(slot, torch.where(small[~ok].any(1), first_small, slot))
            bad = rows[~ok]
            self._clear(bad, slot)
            todo = bad

    def _clear(self, r: torch.Tensor, slot: torch.Tensor) -> None:
        self.atom[r, slot] = self.k
        self.used[r, slot] = False
        self.val[r, slot] = 0.0
        self.theta[r, slot] = 0.0
        self.cs[r, slot] = 0.0

    def remove(self, r: torch.Tensor, slot: torch.Tensor) -> None:
        """The atom in ``slot`` leaves row ``r``: the Schur downdate of G_SS⁻¹."""
        col = self.inv[r, :, slot]
        pivot = self.inv[r, slot, slot]
        self.inv.index_add_(0, r, col[:, :, None] * (col / -pivot[:, None])[:, None, :])
        self.inv[r, slot, :] = 0.0
        self.inv[r, :, slot] = 0.0
        self._clear(r, slot)

    def grow(self) -> None:
        """SPARE more free slots for every row of the group."""
        pad = SPARE
        self.atom = torch.nn.functional.pad(self.atom, (0, pad), value=self.k)
        self.used = torch.nn.functional.pad(self.used, (0, pad))
        self.val = torch.nn.functional.pad(self.val, (0, pad))
        self.theta = torch.nn.functional.pad(self.theta, (0, pad))
        self.cs = torch.nn.functional.pad(self.cs, (0, pad))
        self.inv = torch.nn.functional.pad(self.inv, (0, pad, 0, pad))

    def add(
        self,
        r: torch.Tensor,
        atoms: torch.Tensor,
        signs: torch.Tensor,
        values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Atom ``atoms[i]`` enters row ``r[i]`` with sign ``signs[i]`` (and coefficient
        ``values[i]``, default 0) by bordering with the Schur complement s. An atom in the span
        of S swaps with an atom of S instead (``swap``); returns the rows where neither works."""
        if bool(self.used[r].all(1).any()):
            self.grow()
        gram = self.problem.gram_ext
        inv = self.inv[r]
        g = gram[self.atom[r], atoms[:, None]]
        v = torch.bmm(inv, g[:, :, None])[:, :, 0]
        g_jj = gram[atoms, atoms]
        s = g_jj - (g * v).sum(1)
        ok = s > DEPENDENT * g_jj
        refused = ~ok
        if values is None and bool(refused.any()):
            out = refused.nonzero()[:, 0]
            refused[out] = self.swap(r[out], atoms[out], signs[out], v[out])
        start = torch.zeros_like(s) if values is None else values
        r, atoms, signs, inv, v, s = r[ok], atoms[ok], signs[ok], inv[ok], v[ok], s[ok]
        slot = (~self.used[r]).to(torch.int8).argmax(1)
        inv.add_(v[:, :, None] * v[:, None, :] / s[:, None, None])
        k = torch.arange(r.numel(), device=r.device)
        inv[k, slot, :] = -v / s[:, None]
        inv[k, :, slot] = -v / s[:, None]
        inv[k, slot, slot] = 1.0 / s
        self.inv[r] = inv
        self.atom[r, slot] = atoms
        self.used[r, slot] = True
        self.val[r, slot] = start[ok]
        self.theta[r, slot] = signs
        self.cs[r, slot] = self.c[r, atoms]
        return refused

    def swap(
        self, r: torch.Tensor, atoms: torch.Tensor, signs: torch.Tensor, v: torch.Tensor
    ) -> torch.Tensor:
        """A violating atom j with d_j = D_S v (in the span of S) enters by a pivot: moving
        h_j = σt, h_S − σt v (σ the sign of its correlation) keeps D h, and so the residual,
        while λ‖h‖₁ falls at the rate λ(|d_jᵀr|/λ − 1); at the first zero of h_S that atom leaves
        and j takes its place (a simplex step on the fixed residual). Returns the rows where no
        coefficient of S moves to zero (left to the caller)."""
        val, used = self.val[r], self.used[r]
        direction = -signs[:, None] * v
        shrinks = used & (val * direction < 0)
        t = -val / torch.where(shrinks, direction, torch.ones_like(direction))
        t.masked_fill_(~shrinks, torch.inf)
        tstar, slot = t.min(1)
        fails = ~torch.isfinite(tstar)
        go = (~fails).nonzero()[:, 0]
        r, atoms, signs, tstar, slot = r[go], atoms[go], signs[go], tstar[go], slot[go]
        self.val[r] = torch.addcmul(val[go], tstar[:, None], direction[go])
        self.remove(r, slot)
        fails[go] = self.add(r, atoms, signs, signs * tstar)
        return fails

    def keep(self, go: torch.Tensor) -> None:
        for name in ("rows", "c", "atom", "used", "val", "theta", "cs", "inv"):
            setattr(self, name, getattr(self, name)[go])

    def dense(self, sel: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(sel.numel(), self.k + 1, dtype=self.val.dtype, device=self.val.device)
        return out.scatter_add_(1, self.atom[sel], self.val[sel])[:, : self.k]

    def refined(self, sel: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
        """The codes of rows ``sel`` after one step of iterative refinement: on S the residual
        of G_SS z = c_S − λθ_S is (Dᵀ(x − D h))_S − λθ_S, which the bordered G_SS⁻¹ (accurate
        to its rounding drift) takes back to rounding level."""
        residual = torch.nn.functional.pad(corr, (0, 1)).gather(1, self.atom[sel])
        residual.sub_(self.theta[sel], alpha=self.problem.lam)
        val = self.val[sel] + torch.bmm(self.inv[sel], residual[:, :, None])[:, :, 0]
        out = torch.zeros(sel.numel(), self.k + 1, dtype=val.dtype, device=val.device)
        return out.scatter_add_(1, self.atom[sel], val * self.used[sel])[:, : self.k]

    def round(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One feature-sign round for every row; returns the rows (local) that are done, their
        codes, and the rows that cannot go on (a dependent atom would enter)."""
        p = self.problem
        rhs = self.cs - p.lam * self.theta
        z = torch.bmm(self.inv, rhs[:, :, None])[:, :, 0]
        cross = (z * self.theta <= 0) & self.used
        crossing = cross.any(1)
        finite = torch.isfinite(z).all(1)
        full = (~crossing & finite).nonzero()[:, 0]
        part = (crossing & finite).nonzero()[:, 0]
        lost = (~finite).nonzero()[:, 0]  # an inverse ruined by rounding: left to the caller
        if part.numel():
            # first sign change on the segment val -> z (Lee et al. 2007, step 3)
            val, step = self.val[part], z[part] - self.val[part]
            t = -val / torch.where(cross[part], step, torch.ones_like(step))
            t.masked_fill_(~cross[part], torch.inf)
            tstar, slot = t.min(1)
            self.val[part] = torch.addcmul(val, tstar.clamp_(0.0, 1.0)[:, None], step)
            self.remove(part, slot)
        empty = torch.zeros(0, dtype=torch.long, device=z.device)
        if not full.numel():
            return empty, torch.zeros(0, self.k, dtype=z.dtype, device=z.device), lost
        self.val[full] = z[full] * self.used[full]
        h = self.dense(full)
        corr = torch.addmm(self.c[full, : self.k], h @ p.dictionary.T, p.dictionary, alpha=-1.0)
        viol = corr.clone() if p.positive else corr.abs()
        viol.masked_fill_((h != 0) | p.blocked, 0.0)
        best, atom = viol.max(1)
        adding = best > p.lam * (1.0 + p.kkt_tol)
        done = full[~adding]
        if done.numel():
            h[~adding] = self.refined(done, corr[~adding])
        into = full[adding]
        refused = empty
        if into.numel():
            a = atom[adding]
            sign = torch.ones_like(best[adding])
            if not p.positive:
                sign = torch.sign(corr[adding].gather(1, a[:, None])[:, 0])
            refused = into[self.add(into, a, sign)]
        return done, h[~adding], torch.cat([refused, lost])


def _groups(h: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
    """Rows grouped by support size; each group's width leaves at least SPARE free slots."""
    buckets = size_buckets((h != 0).sum(1), BUCKET, SPARE)
    return [(rows, min(h.shape[1], b * BUCKET)) for rows, b in buckets]


def feature_sign(
    problem: Problem, c: torch.Tensor, h: torch.Tensor, rounds: int
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Feature-sign rounds from the codes ``h`` (c = Dᵀx for the signals x, float64). Returns
    the codes, which signals reached a KKT point, and how many finished in each round run."""
    out = h.clone()
    done = torch.zeros(h.shape[0], dtype=torch.bool, device=h.device)
    finished = [0] * rounds
    ran = 0
    for rows, width in _groups(h):
        group = _Group(problem, rows, c[rows], h[rows], width)
        group.factorise()
        for i in range(rounds):
            if not group.rows.numel():
                break
            ran = max(ran, i + 1)
            fin, codes, stuck = group.round()
            finished[i] += fin.numel()
            out[group.rows[fin]] = codes
            done[group.rows[fin]] = True
            leave = torch.cat([fin, stuck])
            if leave.numel():
                go = torch.ones(group.rows.numel(), dtype=torch.bool, device=h.device)
                go[leave] = False
                if stuck.numel():
                    out[group.rows[stuck]] = group.dense(stuck)
                group.keep(go)
        if group.rows.numel():
            out[group.rows] = group.dense(torch.arange(group.rows.numel(), device=h.device))
    return out, done, finished[:ran]
