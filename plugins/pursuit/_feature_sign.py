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
Presnell and Turlach 2000, eq. 2.4): it is done, and certified on the spot by the duality gap
from the residual the round has just computed. Each round is batched over signals. The first
solves with the Cholesky factor of G_SS; for the signals it does not finish (about half, from
ADMM's support) G_SS⁻¹ is then kept explicitly and changed in place by one rank-one update per
round, the bordering of an atom that enters or the Schur downdate of one that leaves, O(|S|²)
and no factorisation after the first. An entering atom that is (numerically) in the span of S
swaps with one of S instead (a pivot that keeps the residual and lowers ‖h‖₁). Signals are
grouped by support size, so each group pads to its own width; small groups share one, and the
few signals a group has left after its first rounds go on with those of its neighbours.
Signals that are not done after the rounds, or where neither works for the entering atom, are
left to the caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass

import torch

from sparseland.plugins.pursuit._torch import size_buckets
from sparseland.problems import Lasso

BUCKET = 4  # groups pad supports to a multiple of this, with at least SPARE free slots
SPARE = 2
LATE = 512  # a group with fewer rows left than this joins the others' leftovers after its round
REFINE = 1e-12  # a finished signal with a duality gap above this × its objective is refined
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
        self.any_blocked = bool(self.blocked.any())
        self.lasso = Lasso(self.lam, self.positive)


class _Group:
    """Signals of similar support size: atoms, coefficients and signs in ``width`` slots, c on
    them, and G_SS⁻¹ (zero on the unused slots)."""

    def __init__(
        self,
        problem: Problem,
        rows: torch.Tensor,
        x: torch.Tensor,
        c: torch.Tensor,
        h: torch.Tensor,
        width: int,
    ) -> None:
        k = h.shape[1]
        self.k = k
        # c and the codes get a zero column k: the unused slots hold atom k
        self.problem, self.rows, self.x = problem, rows, x
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
        # the starting codes may be of lower precision (a float32 warm start): only their
        # support, signs and the start of the first line search come from them
        self.val = torch.nn.functional.pad(h, (0, 1)).gather(1, self.atom).to(c.dtype)
        if problem.positive:
            self.theta = self.used.to(c.dtype)
        else:
            self.theta = torch.sign(self.val)
        self.cs = self.c.gather(1, self.atom)
        self.inv = torch.empty(0, width, width, dtype=c.dtype, device=h.device)
        self.chol: torch.Tensor | None = None

    @property
    def width(self) -> int:
        return int(self.atom.shape[1])

    def gram_ss(self, sel: torch.Tensor | None = None) -> torch.Tensor:
        """G_SS on the used slots, the identity on the others."""
        atom = self.atom if sel is None else self.atom[sel]
        used = self.used if sel is None else self.used[sel]
        w = self.width
        atom = atom.int()  # int32 flat indices: a third of the time of int64 here
        flat = (atom * (self.k + 1))[:, :, None] + atom[:, None, :]
        g = self.problem.gram_flat.index_select(0, flat.view(-1)).view(-1, w, w)
        g.diagonal(dim1=1, dim2=2).add_((~used).to(g.dtype))
        return g

    def factorise(self) -> None:
        """The Cholesky factor of G_SS (identity on the unused slots); an atom whose pivot fails
        or is below DEPENDENT (relative: it is numerically in the span of the atoms before it)
        leaves S until the rest factorises. G_SS⁻¹ is formed later, only for the signals that
        the first round does not finish (``_invert``)."""
        todo: torch.Tensor | None = None  # None: every row
        while todo is None or todo.numel():
            g = self.gram_ss(todo)
            chol, info = torch.linalg.cholesky_ex(g, upper=True)  # G_SS = UᵀU
            pivot = torch.diagonal(chol, dim1=1, dim2=2)
            small = pivot * pivot <= DEPENDENT * torch.diagonal(g, dim1=1, dim2=2)
            ok = (info == 0) & ~small.any(1)
            if todo is None:
                factor = chol  # the rows that fail are factorised again below
                rows = torch.arange(self.rows.numel(), device=info.device)
            else:
                rows = todo
                factor[rows[ok]] = chol[ok]
            failed = info[~ok] - 1
            first_small = small[~ok].to(torch.int8).argmax(1)
            slot = torch.where(failed >= 0, failed, first_small)
            slot = torch.minimum(slot, torch.where(small[~ok].any(1), first_small, slot))
            bad = rows[~ok]
            self._clear(bad, slot)
            todo = bad
        self.chol = factor

    def _invert(self) -> None:
        """G_SS⁻¹ from the Cholesky factor, zero on the unused slots."""
        assert self.chol is not None
        inv = torch.cholesky_inverse(self.chol, upper=True)
        inv.diagonal(dim1=1, dim2=2).sub_((~self.used).to(inv.dtype))
        self.inv, self.chol = inv, None

    def solve(self, rhs: torch.Tensor, sel: torch.Tensor | None = None) -> torch.Tensor:
        """G_SS⁻¹ rhs for the rows ``sel`` (all by default): by the Cholesky factor before the
        first round's survivors are inverted, by the kept inverse after."""
        if self.chol is not None:
            chol = self.chol if sel is None else self.chol.index_select(0, sel)
            return torch.cholesky_solve(rhs[:, :, None], chol, upper=True)[:, :, 0]
        inv = self.inv if sel is None else self.inv.index_select(0, sel)
        return torch.bmm(inv, rhs[:, :, None])[:, :, 0]

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

    def grow(self, width: int | None = None) -> None:
        """Free slots up to ``width`` (default: SPARE more) for every row of the group; G_SS⁻¹
        is zero on free slots, so padding keeps it exact."""
        pad = SPARE if width is None else width - self.width
        self.atom = torch.nn.functional.pad(self.atom, (0, pad), value=self.k)
        self.used = torch.nn.functional.pad(self.used, (0, pad))
        self.val = torch.nn.functional.pad(self.val, (0, pad))
        self.theta = torch.nn.functional.pad(self.theta, (0, pad))
        self.cs = torch.nn.functional.pad(self.cs, (0, pad))
        self.inv = torch.nn.functional.pad(self.inv, (0, pad, 0, pad))

    def absorb(self, others: list[_Group]) -> None:
        """The rows of ``others`` join this group (inverted ones), all padded to the widest."""
        width = max(g.width for g in [self, *others])
        for g in [self, *others]:
            g.grow(width)
        for name in ("rows", "x", "c", "atom", "used", "val", "theta", "cs", "inv"):
            setattr(self, name, torch.cat([getattr(g, name) for g in [self, *others]]))

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
        """Only the rows where ``go`` is set stay (index_select: several times faster than
        boolean indexing for the stacked matrices here)."""
        idx = go.nonzero()[:, 0]
        for name in ("rows", "x", "c", "atom", "used", "val", "theta", "cs"):
            setattr(self, name, getattr(self, name).index_select(0, idx))
        if self.chol is not None:
            self.chol = self.chol.index_select(0, idx)
        else:
            self.inv = self.inv.index_select(0, idx)

    def dense(
        self, sel: torch.Tensor | None = None, val: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Codes of the rows ``sel`` (all by default) as dense k-vectors."""
        atom = self.atom if sel is None else self.atom[sel]
        if val is None:
            val = self.val if sel is None else self.val[sel]
        out = torch.zeros(atom.shape[0], self.k + 1, dtype=val.dtype, device=val.device)
        return out.scatter_add_(1, atom, val)[:, : self.k]

    def refined(
        self, sel: torch.Tensor, corr: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Codes, objective and gap of rows ``sel`` after one step of iterative refinement: on S
        the residual of G_SS z = c_S − λθ_S is (Dᵀ(x − D h))_S − λθ_S, which G_SS⁻¹ (a Cholesky
        solve, or the bordered inverse accurate to its rounding drift) takes back to rounding
        level."""
        p = self.problem
        residual = torch.nn.functional.pad(corr, (0, 1)).gather(1, self.atom[sel])
        residual.sub_(self.theta[sel], alpha=p.lam)
        val = self.val[sel] + self.solve(residual, sel)
        codes = self.dense(sel, val * self.used[sel])
        r = torch.addmm(self.x[sel], codes, p.dictionary.T, alpha=-1.0)
        return codes, *p.lasso.gap_from(self.x[sel], r, r @ p.dictionary, codes)

    def round(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One feature-sign round for every row. The rows that reach a KKT point leave with their
        codes, as do the rows that cannot go on (a dependent atom would enter, or rounding
        ruined G_SS⁻¹) with their current codes; returns (rows, codes) of both, as indices into
        the caller's signals, the finished ones first, with the objective and duality gap of
        the finished ones (Lasso.gap_terms). Every other row moves: its atom at the first sign
        change leaves, or its most violating atom enters, both as one in-place rank-one update
        of G_SS⁻¹ (``_move``)."""
        p = self.problem
        z = self.solve(self.cs - p.lam * self.theta)
        cross = (z * self.theta <= 0) & self.used
        crossing = cross.any(1)
        finite = torch.isfinite(z).all(1)
        full = (~crossing & finite).nonzero()[:, 0]
        # first sign change on the segment val -> z (Lee et al. 2007, step 3); t = 1 reaches z
        step = z - self.val
        t = -self.val / torch.where(cross, step, torch.ones_like(step))
        t.masked_fill_(~cross, torch.inf)
        tstar, out_slot = t.min(1)
        tstar = torch.where(crossing, tstar.clamp(0.0, 1.0), torch.ones_like(tstar))
        moved = torch.addcmul(self.val, tstar[:, None], step).mul_(self.used)
        self.val = torch.where(finite[:, None], moved, self.val)
        self.val[full] = z[full] * self.used[full]  # exactly z where no sign changes
        h = self.dense(full)
        residual = torch.addmm(self.x[full], h, p.dictionary.T, alpha=-1.0)
        corr = residual @ p.dictionary
        viol = torch.nn.functional.pad(corr if p.positive else corr.abs(), (0, 1))
        viol.scatter_(1, self.atom[full], 0.0)  # the support (and the padding atom k)
        if p.any_blocked:
            viol[:, : self.k].masked_fill_(p.blocked, 0.0)
        best, atom = viol.max(1)
        adding = best > p.lam * (1.0 + p.kkt_tol)
        done = full[~adding]
        # certified here, from the residual and correlations just computed
        codes = h[~adding]
        primal = gap = z.new_zeros(0)
        if done.numel():
            # the largest |correlation| is the larger of the best off S and the largest on S
            on_s = torch.nn.functional.pad(corr[~adding], (0, 1)).gather(1, self.atom[done])
            worst = torch.maximum(best[~adding], on_s.amax(1) if p.positive else on_s.abs().amax(1))
            l1 = self.val[done].abs().sum(1)
            primal, gap = p.lasso.gap_terms(self.x[done], residual[~adding], worst, l1)
            drift = (gap > REFINE * primal).nonzero()[:, 0]
            if drift.numel():
                codes[drift], primal[drift], gap[drift] = self.refined(
                    done[drift], corr[~adding][drift]
                )
        # what each remaining row does: one atom out (crossing) or one atom in (adding)
        enter = torch.full_like(tstar, -1.0).long()
        enter[full[adding]] = atom[adding]
        sign = torch.zeros_like(tstar)
        sign[full[adding]] = (
            1.0 if p.positive else torch.sign(corr[adding].gather(1, atom[adding, None])[:, 0])
        )
        lost = (~finite).nonzero()[:, 0]  # rounding ruined G_SS⁻¹: left to the caller
        leave = torch.cat([done, lost])
        left_rows = self.rows[leave]
        left_codes = torch.cat([codes, self.dense(lost)])
        if leave.numel():
            go = torch.ones(self.rows.numel(), dtype=torch.bool, device=z.device)
            go[leave] = False
            self.keep(go)
            crossing, out_slot, enter, sign = crossing[go], out_slot[go], enter[go], sign[go]
        if self.chol is not None:
            self._invert()
        refused = self._move(crossing, out_slot, enter, sign)
        if refused.numel():
            stuck_codes = self.dense(refused)
            go = torch.ones(self.rows.numel(), dtype=torch.bool, device=z.device)
            go[refused] = False
            left_rows = torch.cat([left_rows, self.rows[refused]])
            left_codes = torch.cat([left_codes, stuck_codes])
            self.keep(go)
        return left_rows, left_codes, primal, gap

    def _move(
        self, out: torch.Tensor, out_slot: torch.Tensor, enter: torch.Tensor, sign: torch.Tensor
    ) -> torch.Tensor:
        """Rows with ``out`` lose the atom in ``out_slot``; rows with ``enter[i] ≥ 0`` take that
        atom with sign ``sign[i]``. Both are G_SS⁻¹ ← G_SS⁻¹ + β a aᵀ, applied to every row in
        one pass: leaving slot p, a = G_SS⁻¹e_p and β = −1/(G_SS⁻¹)_pp (the Schur downdate,
        which zeroes row and column p); entering atom j in a free slot q, v = G_SS⁻¹G_Sj,
        s = G_jj − G_jSv (the Schur complement), a = v − e_q and β = 1/s (bordering). An atom
        in the span of S swaps instead (``swap``); returns the rows where neither works."""
        adding = enter >= 0
        if bool(self.used[adding].all(1).any()):
            self.grow()
        w, gram = self.width, self.problem.gram_ext
        column = self.inv.gather(2, out_slot.view(-1, 1, 1).expand(-1, w, 1))[:, :, 0]
        pivot = column.gather(1, out_slot[:, None])[:, 0]
        beta = torch.where(out, -1.0 / pivot, torch.zeros_like(pivot))
        j = torch.where(adding, enter, self.k)  # atom k is the zero atom: g = 0 elsewhere
        g = gram[self.atom, j[:, None]]
        v = torch.bmm(self.inv, g[:, :, None])[:, :, 0]
        g_jj = gram[j, j]
        schur = g_jj - (g * v).sum(1)
        ok = adding & (schur > DEPENDENT * g_jj)
        slot_in = (~self.used).to(torch.int8).argmax(1)
        a = torch.where(ok[:, None], v.scatter(1, slot_in[:, None], -1.0), column)
        beta = torch.where(ok, 1.0 / schur, beta)
        self.inv.baddbmm_(a[:, :, None], (beta[:, None] * a)[:, None, :])
        r = out.nonzero()[:, 0]
        p = out_slot[r]
        self.inv[r, p, :] = 0.0
        self.inv[r, :, p] = 0.0
        self._clear(r, p)
        r = ok.nonzero()[:, 0]
        q, atoms = slot_in[r], enter[r]
        self.atom[r, q] = atoms
        self.used[r, q] = True
        self.val[r, q] = 0.0
        self.theta[r, q] = sign[r]
        self.cs[r, q] = self.c[r, atoms]
        r = (adding & ~ok).nonzero()[:, 0]
        if not r.numel():
            return r
        return r[self.swap(r, enter[r], sign[r], v[r])]


def _groups(h: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
    """Rows grouped by support size; each group's width leaves at least SPARE free slots.
    Neighbouring sizes share a group until it has LATE rows: below that, a group's fixed cost
    per round (tens of kernel launches) outweighs what padding to a common width costs."""
    groups: list[tuple[torch.Tensor, int]] = []
    pending: list[torch.Tensor] = []
    buckets = size_buckets((h != 0).sum(1), BUCKET, SPARE)
    for i, (rows, b) in enumerate(buckets):
        pending.append(rows)
        if sum(r.numel() for r in pending) >= LATE or i == len(buckets) - 1:
            groups.append((torch.cat(pending), min(h.shape[1], b * BUCKET)))
            pending = []
    return groups


def feature_sign(
    problem: Problem,
    x: torch.Tensor,
    h: torch.Tensor,
    rounds: int,
    helper: Executor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, list[int], torch.Tensor, torch.Tensor]:
    """Feature-sign rounds from the codes ``h`` for the signals ``x`` (float64). Returns the
    codes, which signals reached a KKT point, how many finished in each round run, and the
    objective and duality gap of the finished ones (NaN for the others). With a ``helper``
    thread, the groups' first factorisations (a few large kernels each) run there, ahead of
    the rounds (thousands of small ones) in this thread."""
    # every row is written once: finished, stuck or left over
    out = torch.empty(h.shape, dtype=x.dtype, device=h.device)
    done = torch.zeros(h.shape[0], dtype=torch.bool, device=h.device)
    primal = torch.full((h.shape[0],), torch.nan, dtype=x.dtype, device=h.device)
    gap = primal.clone()
    finished = [0] * rounds
    ran = 0

    def record(result: tuple[torch.Tensor, ...], i: int) -> None:
        left, codes, p, g = result
        out[left] = codes
        first = left[: p.numel()]
        finished[i] += first.numel()
        done[first], primal[first], gap[first] = True, p, g

    def factorised(rows: torch.Tensor, width: int) -> _Group:
        group = _Group(problem, rows, x[rows], x[rows] @ problem.dictionary, h[rows], width)
        group.factorise()
        return group

    groups: Iterable[_Group]
    if helper is None:
        groups = (factorised(rows, width) for rows, width in _groups(h))
    else:  # the helper factorises the next groups while this thread runs the rounds
        groups = (f.result() for f in [helper.submit(factorised, *g) for g in _groups(h)])
    late: list[tuple[_Group, int]] = []
    for group in groups:
        i = 0
        while group.rows.numel() and i < rounds:
            if i > 0 and group.rows.numel() < LATE:
                late.append((group, i))  # few rows left: they go on together
                break
            ran = max(ran, i + 1)
            record(group.round(), i)
            i += 1
        else:
            if group.rows.numel():
                out[group.rows] = group.dense()
    # the leftovers of groups of neighbouring widths go on together (fewer, fuller rounds)
    pools: list[list[tuple[_Group, int]]] = []
    for item in late:
        if pools and sum(g.rows.numel() for g, _ in pools[-1]) + item[0].rows.numel() <= LATE:
            pools[-1].append(item)
        else:
            pools.append([item])
    for pool in pools:
        group, first = pool[0][0], min(i for _, i in pool)
        group.absorb([g for g, _ in pool[1:]])
        for i in range(first, rounds):
            if not group.rows.numel():
                break
            ran = max(ran, i + 1)
            record(group.round(), i)
        if group.rows.numel():
            out[group.rows] = group.dense()
    return out, done, finished[:ran], primal, gap
