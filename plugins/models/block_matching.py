"""Block matching: for patches on a grid, the most similar patches in a search window.

For every reference patch (top-left corners on a grid of ``step``, the last row and column
always included so that every pixel is covered) the squared distances ‖P_ref − P_cand‖² to all
candidates within ±``window`` pixels are computed at once per displacement: the image minus its
shifted copy, squared, summed over every p×p box (an average pooling). The loop runs over the
(2·window + 1)² displacements, in chunks, each a whole-image tensor operation; nothing loops over
patches. The ``group_size`` nearest candidates are kept (the reference itself, at distance 0,
is always one of them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

OFFSET_CHUNK = 32  # displacements per pooling call


def grid(length: int, step: int) -> torch.Tensor:
    """0, step, 2·step, … below ``length``, with ``length − 1`` added when missed."""
    points = torch.arange(0, length, step)
    if int(points[-1]) != length - 1:
        points = torch.cat([points, torch.tensor([length - 1])])
    return points


@torch.no_grad()
def match_blocks(
    image: torch.Tensor, patch_size: int, group_size: int, window: int, step: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Groups of similar patches of ``image`` (H, W).

    Returns the flat indices (n_refs, group_size) of the top-left corners of each group's
    patches into the (H − p + 1) × (W − p + 1) grid of all patch positions, nearest first, and
    their squared distances to the reference (n_refs, group_size).
    """
    h, w = image.shape
    rows, cols = h - patch_size + 1, w - patch_size + 1
    ref_r = grid(rows, step).to(image.device)
    ref_c = grid(cols, step).to(image.device)
    rr, cc = torch.meshgrid(ref_r, ref_c, indexing="ij")
    rr, cc = rr.reshape(-1), cc.reshape(-1)
    span = torch.arange(-window, window + 1, device=image.device)
    dy, dx = torch.meshgrid(span, span, indexing="ij")
    dy, dx = dy.reshape(-1), dx.reshape(-1)
    padded = F.pad(image[None, None], (window, window, window, window))[0, 0]
    distances = torch.empty(rr.numel(), dy.numel(), dtype=image.dtype, device=image.device)
    area = float(patch_size * patch_size)
    for start in range(0, dy.numel(), OFFSET_CHUNK):
        oy, ox = dy[start : start + OFFSET_CHUNK], dx[start : start + OFFSET_CHUNK]
        shifted = torch.stack(
            [
                padded[window + a : window + a + h, window + b : window + b + w]
                for a, b in zip(oy.tolist(), ox.tolist())
            ]
        )
        sq = (image[None] - shifted).pow(2)
        boxes = F.avg_pool2d(sq[:, None], patch_size, stride=1)[:, 0] * area  # (B, rows, cols)
        distances[:, start : start + oy.numel()] = boxes[:, rr, cc].T
    cand_r = rr[:, None] + dy[None]
    cand_c = cc[:, None] + dx[None]
    valid = (cand_r >= 0) & (cand_r < rows) & (cand_c >= 0) & (cand_c < cols)
    distances.masked_fill_(~valid, float("inf"))
    # the reference first: ties at distance 0 (flat regions) must not push it out
    centre = dy.numel() // 2
    distances[:, centre] = -1.0
    k = min(group_size, dy.numel())
    best, which = torch.topk(distances, k, dim=1, largest=False)
    best[:, 0] = 0.0
    flat = cand_r.gather(1, which) * cols + cand_c.gather(1, which)
    # a window too small for the group near a border: repeat the reference
    missing = torch.isinf(best)
    if bool(missing.any()):
        flat = torch.where(missing, flat[:, :1], flat)
        best = best.masked_fill(missing, 0.0)
    return flat, best
