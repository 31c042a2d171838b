"""Monte-Carlo SURE against closed forms: soft thresholding (Donoho and Johnstone's SURE) and
linear smoothers (divergence = trace), and its choice against the true error."""

from __future__ import annotations

import torch

from sparseland.plugins.models.monte_carlo_sure import monte_carlo_sure


def _signal(n: int) -> torch.Tensor:
    t = torch.linspace(0, 1, n, dtype=torch.float64)
    return torch.sin(6 * t)[:, None] * torch.cos(4 * t)[None, :]


def test_soft_thresholding_risk_matches_the_closed_form_sure() -> None:
    """Soft thresholding at τ: SURE = σ² − 2σ² #{|y| ≤ τ}/N + Σ min(y², τ²)/N. The noise is drawn
    with seed 0, the probe's own seed: a probe equal to the noise would inflate the divergence
    (thresholding keeps the entries where the noise is large)."""
    sigma = 0.1
    clean = torch.zeros(128, 128, dtype=torch.float64)
    clean[::7, ::5] = 0.8
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(0), dtype=clean.dtype)
    noisy = clean + sigma * noise
    taus = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=clean.dtype) * sigma

    def shrink(y: torch.Tensor) -> torch.Tensor:
        t = taus[:, None, None]
        return torch.sign(y) * (y.abs() - t).clamp_min(0)

    _, risk = monte_carlo_sure(shrink, noisy, sigma, probe_scale=1e-3, seed=0)
    n = noisy.numel()
    small = (noisy.abs()[None] <= taus[:, None, None]).flatten(1).sum(1)
    closed = (
        sigma**2
        - 2 * sigma**2 * small / n
        + torch.minimum(noisy[None] ** 2, taus[:, None, None] ** 2).flatten(1).sum(1) / n
    )
    # the Monte-Carlo divergence Σ_kept b_i² has std √(2 · kept): allow 4 of them
    kept = n - small
    allowed = 4 * 2 * sigma**2 * torch.sqrt(2.0 * kept) / n
    assert torch.all((risk - closed).abs() <= allowed), (risk, closed, allowed)
    # tight enough to tell the divergence a probe equal to the noise would give, Σ_kept n_i²
    kept_mask = noisy.abs()[None] > taus[:, None, None]
    biased = (kept_mask * noise[None] ** 2).flatten(1).sum(1)
    assert torch.all(2 * sigma**2 * (biased - kept).abs() / n > 2 * allowed)


def test_linear_smoother_risk_is_unbiased_and_picks_the_best_width() -> None:
    """Gaussian blurs of growing width: the risks follow the true mean squared errors (SURE is
    unbiased and, for N = 128², tight) and the lowest risk is the lowest true error."""
    sigma = 0.2
    clean = _signal(128)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(1), dtype=clean.dtype)
    noisy = clean + sigma * noise
    widths = [0.5, 1.0, 2.0, 4.0, 8.0]

    def blur(y: torch.Tensor) -> torch.Tensor:
        outs = []
        for w in widths:
            x = torch.arange(-12, 13, dtype=y.dtype)
            k = torch.exp(-0.5 * (x / w) ** 2)
            k = k / k.sum()
            img = torch.nn.functional.conv2d(y[None, None], k[None, None, :, None], padding="same")
            img = torch.nn.functional.conv2d(img, k[None, None, None, :], padding="same")
            outs.append(img[0, 0])
        return torch.stack(outs)

    estimates, risk = monte_carlo_sure(blur, noisy, sigma)
    true = (estimates - clean).pow(2).flatten(1).mean(1)
    torch.testing.assert_close(risk, true, rtol=0.1, atol=2e-4)
    assert int(risk.argmin()) == int(true.argmin())
    assert true.max() > 3 * true.min()  # the candidates differ enough to make the choice real


def test_risks_are_reproducible_and_one_estimate_keeps_its_shape() -> None:
    noisy = torch.randn(16, 16, generator=torch.Generator().manual_seed(2))
    halve = lambda y: (0.5 * y)[None]  # noqa: E731
    first = monte_carlo_sure(halve, noisy, 1.0)
    second = monte_carlo_sure(halve, noisy, 1.0)
    assert first[0].shape == (1, 16, 16)
    torch.testing.assert_close(first[1], second[1])
