"""The non-local sparse denoiser: block matching against a brute-force search, the
collaborative stage against a least-squares projection, and the whole method against plain
K-SVD denoising on the same image and dictionary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import store

from sparseland import metrics
from sparseland.operators import dct_dictionary
from sparseland.plugins.datasets.natural_images import load_image
from sparseland.plugins.models.block_matching import match_blocks
from sparseland.plugins.models.collaborative_wiener import dct_matrix, haar_matrix, wiener_groups
from sparseland.plugins.models.nonlocal_denoising import (
    NonlocalSettings,
    denoise_candidates,
    denoise_nonlocal,
    split_by_size,
)
from sparseland.plugins.models.patch_denoising import denoise_with_patches
from sparseland.plugins.pursuit.group_coding import simultaneous_omp_support
from sparseland.runner import run


def test_block_matching_finds_the_nearest_patches_of_a_brute_force_search() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((14, 17))
    p, m, window, step = 3, 5, 3, 4
    flat, dist = match_blocks(torch.tensor(image), p, m, window, step)
    rows, cols = 14 - p + 1, 17 - p + 1
    refs = [(r, c) for r in [0, 4, 8, 11] for c in [0, 4, 8, 12, 14]]
    assert flat.shape == (len(refs), m)
    for i, (r, c) in enumerate(refs):
        ref = image[r : r + p, c : c + p]
        found = {}
        for a in range(max(0, r - window), min(rows, r + window + 1)):
            for b in range(max(0, c - window), min(cols, c + window + 1)):
                found[a * cols + b] = float(((image[a : a + p, b : b + p] - ref) ** 2).sum())
        expected = sorted(found.values())[:m]
        assert int(flat[i, 0]) == r * cols + c  # the reference first
        np.testing.assert_allclose(dist[i].numpy(), expected, atol=1e-12)
        np.testing.assert_allclose([found[int(j)] for j in flat[i]], expected, atol=1e-12)


def test_collaborative_stage_without_noise_projects_onto_the_chosen_atoms() -> None:
    """σ = 0: every Wiener factor is 1, so each patch is its least-squares projection onto the
    constant atom and the atoms simultaneous OMP chose for the pilot."""
    gen = torch.Generator().manual_seed(0)
    D = dct_dictionary(4, 32).double()
    noisy = torch.randn(6, 8, 16, generator=gen, dtype=torch.float64)
    pilot = noisy + 0.1 * torch.randn(noisy.shape, generator=gen, dtype=torch.float64)
    patches, weight = wiener_groups(noisy, pilot, D, sigma=0.0, gain=1.0)
    assert torch.all(weight > 0)
    # the projection, computed independently per patch with numpy's lstsq
    support, _, count = simultaneous_omp_support(pilot - pilot.mean(2, keepdim=True), D, 15, 0.0)
    for g in range(noisy.shape[0]):
        basis = np.column_stack([np.ones(16) / 4, D.numpy()[:, support[g, : int(count[g])]]])
        coef, *_ = np.linalg.lstsq(basis, noisy[g].numpy().T, rcond=None)
        np.testing.assert_allclose(patches[g].numpy(), (basis @ coef).T, atol=1e-9)


def test_dct_matrix_is_orthonormal() -> None:
    t = dct_matrix(16, torch.float64, torch.device("cpu"))
    torch.testing.assert_close(t @ t.T, torch.eye(16, dtype=torch.float64))


def test_haar_matrix_is_orthonormal_with_the_mean_first() -> None:
    h = haar_matrix(16, torch.float64, torch.device("cpu"))
    torch.testing.assert_close(h @ h.T, torch.eye(16, dtype=torch.float64))
    torch.testing.assert_close(h[0], torch.full((16,), 0.25, dtype=torch.float64))


def test_hard_thresholding_keeps_everything_at_zero_and_only_the_mean_at_infinity() -> None:
    """Orthonormal transforms: λ = 0 returns the groups; λ = ∞ keeps the 3-D spectrum's first
    coefficient, i.e. every patch becomes the group's mean pixel value."""
    gen = torch.Generator().manual_seed(0)
    groups = torch.randn(5, 8, 16, generator=gen, dtype=torch.float64)
    for transform in ("haar", "dct"):
        same, _ = wiener_groups(groups, None, None, 0.1, 1.0, transform, lam=0.0)
        torch.testing.assert_close(same, groups)
        flat, weight = wiener_groups(groups, None, None, 0.1, 1.0, transform, lam=1e9)
        expected = groups.mean(dim=(1, 2), keepdim=True).expand_as(groups)
        torch.testing.assert_close(flat, expected)
        torch.testing.assert_close(weight, torch.ones(5, dtype=torch.float64))


def test_groups_are_cut_to_the_patches_within_the_limit_rounded_to_a_power_of_two() -> None:
    rng = np.random.default_rng(0)
    distances = np.sort(rng.random((40, 32)) * 3, axis=1)
    distances[:, 0] = 0.0
    flat = torch.arange(40 * 32).reshape(40, 32)
    parts = split_by_size(flat, torch.tensor(distances), 1.0)
    seen = 0
    for part in parts:
        size = part.shape[1]
        assert size & (size - 1) == 0
        for row in part:
            i = int(row[0]) // 32
            within = int((distances[i] <= 1.0).sum())
            assert size <= within < 2 * size  # the largest power of 2 not above the count
            np.testing.assert_array_equal(row.numpy(), flat[i, :size].numpy())
        seen += part.shape[0]
    assert seen == 40


def _noisy_crop(size: int, sigma: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    clean = load_image("camera")[150 : 150 + size, 150 : 150 + size]
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(seed))
    return clean, clean + sigma * noise


def test_nonlocal_beats_patchwise_coding_with_the_same_dictionary() -> None:
    sigma = 25 / 255
    clean, noisy = _noisy_crop(64, sigma)
    D = dct_dictionary(8, 256)
    patchwise = denoise_with_patches(noisy, sigma, D, 8)
    one_stage = denoise_nonlocal(noisy, sigma, D, 8, NonlocalSettings(stages=1))
    two_stages = denoise_nonlocal(noisy, sigma, D, 8)
    psnr = [
        float(metrics.psnr(clean, x.clamp(0, 1), 1.0)) for x in (patchwise, one_stage, two_stages)
    ]
    assert psnr[1] > psnr[0] + 0.2, psnr
    assert psnr[2] > psnr[1] + 0.3, psnr


def test_monte_carlo_sure_chooses_the_wiener_factor_with_the_lowest_true_error() -> None:
    """Several μ²: each candidate is the method run with that μ² alone, and the one returned is
    the candidate closest to the clean image."""
    sigma = 25 / 255
    clean, noisy = _noisy_crop(64, sigma)
    D = dct_dictionary(8, 256)
    settings = NonlocalSettings(wiener_mu2=(0.1, 0.7, 6.0))
    candidates = denoise_candidates(noisy, sigma, D, 8, settings)
    errors = (candidates - clean).pow(2).flatten(1).mean(1)
    assert errors.max() > 1.2 * errors.min(), errors  # a real choice
    report: dict[str, float] = {}
    chosen = denoise_nonlocal(noisy, sigma, D, 8, settings, report)
    torch.testing.assert_close(chosen, candidates[int(errors.argmin())])
    assert report["wiener_mu2"] == settings.wiener_mu2[int(errors.argmin())]
    true_mse = float(errors.min()) * 255**2
    # on 64² pixels the divergence from one small probe is rough (threshold crossings): the
    # risk's scale, not its value, and the choice above are what this crop can check
    assert abs(report["sure_mse"] - true_mse) < 0.5 * true_mse, (report, true_mse)
    alone = denoise_nonlocal(noisy, sigma, D, 8, NonlocalSettings(wiener_mu2=(6.0,)))
    torch.testing.assert_close(alone, candidates[2])


def _crop_file(tmp_path: Path, size: int) -> Path:
    from PIL import Image

    crop = (load_image("camera")[150 : 150 + size, 150 : 150 + size].numpy() * 255).round()
    path = tmp_path / "crop.png"
    Image.fromarray(crop.astype(np.uint8)).save(path)
    return path


@pytest.mark.slow
def test_nonlocal_recipe_beats_the_ksvd_recipe_on_the_same_image(
    make_config, outputs: Path, tmp_path: Path
) -> None:
    image = _crop_file(tmp_path, 64)
    results = {}
    for recipe in ("denoise_ksvd", "denoise_nonlocal"):
        cfg = make_config(
            f"recipe={recipe}",
            "dataset=images",
            f"dataset.image={image}",
            "dataset.sigma=25",
            "dataset.n_train=2000",
            "dataset.n_val=200",
            "dataset.batch_size=1000",
            "task=denoise",
            "task.log_images=false",
            "trainer.max_epochs=3",
            "model.n_atoms=128",
            f"logger.experiment={recipe}",
            small=False,
        )
        results[recipe] = run(cfg, run_dir=tmp_path / recipe)["test/psnr"]
    assert results["denoise_nonlocal"] > results["denoise_ksvd"] + 0.5, results
    # the Wiener factor Monte-Carlo SURE chose is on the run, as a tag
    client = store(outputs)
    experiment = client.get_experiment_by_name("denoise_nonlocal")
    (found,) = client.search_runs([experiment.experiment_id])
    assert float(found.data.tags["denoise.wiener_mu2"]) in (0.5, 0.7, 1.0, 1.4, 2.0)
    assert float(found.data.tags["denoise.sure_mse"]) > 0
