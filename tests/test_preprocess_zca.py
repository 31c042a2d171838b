"""ZCA whitening: identity covariance, symmetric (closest to identity), exact inverse."""

from __future__ import annotations

import torch

from sparseland import build


def correlated(n: int = 4000, d: int = 16, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=gen, dtype=torch.float64)
    return torch.randn(n, d, generator=gen, dtype=torch.float64) @ mix + 3.0


def test_zca_output_has_identity_covariance() -> None:
    x = correlated()
    zca = build("preprocess", "zca", eps=0.0, remove_dc=False).fit(x)
    y = zca.transform(x)
    cov = torch.cov(y.T, correction=0)
    assert torch.allclose(cov, torch.eye(16, dtype=torch.float64), atol=1e-8)
    assert torch.allclose(y.mean(dim=0), torch.zeros(16, dtype=torch.float64), atol=1e-10)
    # ZCA's whitening matrix is the symmetric one, W = C^{-1/2} (closest to the identity).
    w = zca.state["whiten"]
    assert torch.allclose(w, w.T, atol=1e-10)


def test_zca_inverse_round_trips() -> None:
    x = correlated()
    for remove_dc in (False, True):
        zca = build("preprocess", "zca", eps=1e-3, remove_dc=remove_dc).fit(x)
        back = zca.inverse_transform(zca.transform(x), raw=x)
        assert torch.allclose(back, x, atol=1e-8)


def test_dc_removal_round_trips_and_zeroes_means() -> None:
    x = correlated()
    dc = build("preprocess", "dc")
    y = dc.transform(x)
    assert torch.allclose(y.mean(dim=1), torch.zeros(x.shape[0], dtype=x.dtype), atol=1e-12)
    assert torch.allclose(dc.inverse_transform(y, raw=x), x)


def test_patch_extraction_then_averaging_restores_the_image() -> None:
    image = torch.rand(20, 17, dtype=torch.float64)
    patches = build("preprocess", "patches", size=5, stride=1)
    rows = patches.transform(image)
    assert rows.shape == ((20 - 4) * (17 - 4), 25)
    assert torch.equal(rows[0].reshape(5, 5), image[:5, :5])
    assert torch.allclose(patches.inverse_transform(rows, raw=image), image)
