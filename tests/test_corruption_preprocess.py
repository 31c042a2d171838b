"""Corruptions do what they say: noise statistics, knocked-out fraction, identity inverse."""

from __future__ import annotations

import pytest
import torch

from sparseland import build
from sparseland.errors import ConfigError, ShapeError


def test_gaussian_noise_has_the_requested_standard_deviation_and_no_bias() -> None:
    torch.manual_seed(0)
    clean = torch.rand(200, 64)
    noise = build("preprocess", "gaussian_noise", sigma=25.0).transform(clean) - clean
    assert float(noise.mean()) == pytest.approx(0.0, abs=1e-3)
    assert float(noise.std()) == pytest.approx(25.0 / 255.0, rel=0.01)
    # fresh noise on every call (a denoiser must not see the same noise twice)
    corruption = build("preprocess", "gaussian_noise", sigma=25.0)
    assert not torch.equal(corruption.transform(clean), corruption.transform(clean))


def test_gaussian_noise_clips_to_the_unit_range_when_asked() -> None:
    out = build("preprocess", "gaussian_noise", sigma=100.0, clip=True).transform(
        torch.rand(50, 16)
    )
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_poisson_noise_is_unbiased_with_variance_x_over_peak() -> None:
    torch.manual_seed(0)
    x = torch.tensor([0.1, 0.5, 0.9]).repeat(40000, 1)
    y = build("preprocess", "poisson_noise", peak=20.0).transform(x)
    torch.testing.assert_close(y.mean(dim=0), x[0], atol=0.01, rtol=0)
    torch.testing.assert_close(y.var(dim=0), x[0] / 20.0, atol=0, rtol=0.05)
    assert torch.equal(torch.round(y * 20.0), y * 20.0)  # counts / peak


def test_poisson_noise_refuses_negative_intensities() -> None:
    with pytest.raises(ShapeError, match="intensities"):
        build("preprocess", "poisson_noise").transform(torch.randn(4, 16))


def test_knockout_zeroes_whole_blocks_in_the_requested_fraction() -> None:
    torch.manual_seed(0)
    x = torch.rand(500, 1, 32, 32) + 0.5  # no pixel is 0 before the knock-out
    y = build("preprocess", "knockout", block=4, fraction=0.3).transform(x)
    out = y == 0
    assert float(out.float().mean()) == pytest.approx(0.3, abs=0.01)
    blocks = out.reshape(500, 1, 8, 4, 8, 4)
    per_block = blocks.float().mean(dim=(3, 5))
    assert bool(((per_block == 0) | (per_block == 1)).all())  # all or nothing per 4×4 block
    assert torch.equal(y[~out], x[~out])  # the rest is untouched


def test_knockout_on_rows_of_square_patches_and_refuses_other_rows() -> None:
    x = torch.ones(10, 64)
    y = build("preprocess", "knockout", block=8, fraction=1.0).transform(x)
    assert y.shape == x.shape and bool((y == 0).all())
    with pytest.raises(ShapeError, match="square"):
        build("preprocess", "knockout").transform(torch.ones(3, 10))


@pytest.mark.parametrize("name", ["gaussian_noise", "poisson_noise", "knockout"])
def test_corruptions_are_marked_and_invert_to_themselves(name: str) -> None:
    corruption = build("preprocess", name)
    assert corruption.corrupts
    y = torch.rand(3, 16)
    assert torch.equal(corruption.inverse_transform(y), y)


def test_bad_parameters_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="fraction"):
        build("preprocess", "knockout", fraction=1.5)
    with pytest.raises(ConfigError, match="peak"):
        build("preprocess", "poisson_noise", peak=0.0)
    with pytest.raises(ConfigError, match="sigma"):
        build("preprocess", "gaussian_noise", sigma=-1.0)
