"""Pieces shared by the dictionary learners: column updates, atom replacement, candidates.

Every learner keeps atoms on the unit sphere ‖d_j‖ = 1 and replaces atoms that are unused
(no energy in A = Σ h hᵀ) or duplicates (|d_iᵀ d_j| above a threshold, the "clear
dictionary" step of Rubinstein's K-SVD box) by the signals the current dictionary codes
worst. Candidates travel as ``gather_*`` statistics (concatenated across DDP processes) and
are ranked by residual with a stable sort, so every process — and a single process that saw
the same signals — picks the same ones.
"""

from __future__ import annotations

import torch

N_CANDIDATES = 8  # worst-coded signals kept per batch as replacement candidates


def bcd_columns(D: torch.Tensor, A: torch.Tensor, B: torch.Tensor, sweeps: int) -> None:
    """Block-coordinate descent on min_D ½tr(Dᵀ D A) − tr(Dᵀ B), ‖d_j‖ = 1, in place.

    Mairal et al. 2009, Algorithm 2: u_j = d_j + (b_j − D a_j)/A_jj, d_j = u_j/‖u_j‖. On the
    sphere this is the exact minimiser over d_j with the other columns fixed (the objective is
    −d_jᵀ(b_j − Σ_{l≠j} d_l A_lj) + const), so the objective never increases.
    """
    diag = torch.diagonal(A)
    for _ in range(sweeps):
        for j in range(D.shape[1]):
            if diag[j] <= 0:
                continue
            u = D[:, j] + (B[:, j] - D @ A[:, j]) / diag[j]
            norm = u.norm()
            if norm > 0:
                D[:, j] = u / norm


def normalize_columns_(D: torch.Tensor) -> torch.Tensor:
    """Scale every column to unit norm in place; returns the norms before scaling."""
    norms = D.norm(dim=0).clamp_min(1e-12)
    D.div_(norms)
    return norms


def unused_atoms(A: torch.Tensor, threshold: float) -> torch.Tensor:
    """Mask of atoms whose energy A_jj is below ``threshold`` × mean(diag A)."""
    diag = torch.diagonal(A)
    return diag <= threshold * diag.mean().clamp_min(1e-30)


def duplicate_atoms(D: torch.Tensor, max_coherence: float) -> torch.Tensor:
    """Mask of atoms j with |d_iᵀ d_j| > ``max_coherence`` for some i < j (keep the first)."""
    if max_coherence >= 1.0:
        return torch.zeros(D.shape[1], dtype=torch.bool, device=D.device)
    gram = (D.T @ D).abs().triu(diagonal=1)
    return (gram > max_coherence).any(dim=0)


def candidate_statistics(
    x: torch.Tensor, codes: torch.Tensor, D: torch.Tensor, k: int = N_CANDIDATES
) -> dict[str, torch.Tensor]:
    """The ``k`` worst-coded signals of a batch and their residual norms, as gather_* stats."""
    residual = (x - codes @ D.T).norm(dim=1)
    top = residual.topk(min(k, x.shape[0]))
    return {"gather_candidates": x[top.indices], "gather_residuals": top.values}


def gram_statistics(
    x: torch.Tensor, codes: torch.Tensor, D: torch.Tensor
) -> dict[str, torch.Tensor]:
    """A = Σ h hᵀ, B = Σ x hᵀ, the count n and the replacement candidates of a batch: the
    sufficient statistics of the learners that update D from (A, B) (Mairal et al. 2009, §3)."""
    return {
        "A": codes.T @ codes,
        "B": x.T @ codes,
        "n": torch.tensor(float(x.shape[0]), device=x.device, dtype=x.dtype),
        **candidate_statistics(x, codes, D),
    }


def keep_worst(stats: dict[str, torch.Tensor], k: int = N_CANDIDATES) -> None:
    """Trim accumulated candidates to the ``k`` with the largest residuals, in place."""
    if "gather_residuals" not in stats or stats["gather_residuals"].numel() <= k:
        return
    order = torch.sort(stats["gather_residuals"], descending=True, stable=True).indices[:k]
    stats["gather_residuals"] = stats["gather_residuals"][order]
    stats["gather_candidates"] = stats["gather_candidates"][order]


def replace_atoms(
    D: torch.Tensor,
    replace: torch.Tensor,
    candidates: torch.Tensor,
    residuals: torch.Tensor,
    limit: int | None = N_CANDIDATES,
) -> torch.Tensor:
    """Overwrite the atoms in mask ``replace`` by the normalised worst-coded candidates.

    Returns the indices of the atoms replaced (fewer than asked when candidates run out or
    are zero). Candidates are taken in order of decreasing residual, ties by position, and at
    most ``limit`` of them: the same ones however many processes gathered them.
    """
    idx = replace.nonzero().squeeze(1)
    if idx.numel() == 0 or candidates.shape[0] == 0:
        return idx[:0]
    order = torch.sort(residuals, descending=True, stable=True).indices[:limit]
    chosen = candidates[order].T  # (m, c)
    norms = chosen.norm(dim=0)
    chosen = chosen[:, norms > 1e-12]
    n = min(int(idx.numel()), int(chosen.shape[1]))
    idx = idx[:n]
    new = chosen[:, :n]
    D[:, idx] = (new / new.norm(dim=0, keepdim=True)).to(D.dtype)
    return idx
