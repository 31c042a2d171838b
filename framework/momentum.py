"""The FISTA momentum rule (Beck and Teboulle 2009, eq. 4.2–4.3), written once.

    t_{k+1} = (1 + √(1 + 4 t_k²)) / 2,   β_k = (t_k − 1)/t_{k+1},
    y_{k+1} = h_k + β_k (h_k − h_{k−1}),

from t_1 = 1. ``t`` is a number, or an array of one t per signal (adaptive restart resets
entries to 1).
"""

from __future__ import annotations

from typing import Any


def next_momentum(t: Any) -> tuple[Any, Any]:
    """(t_{k+1}, β_k) from t_k: the new momentum parameter and the extrapolation weight."""
    t_next = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
    return t_next, (t - 1.0) / t_next


def momentum_weights(n: int) -> list[float]:
    """β_1 … β_n of the first ``n`` steps from t_1 = 1 (for unrolled networks)."""
    betas, t = [], 1.0
    for _ in range(n):
        t, beta = next_momentum(t)
        betas.append(beta)
    return betas
