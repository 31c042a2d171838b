"""Dataset ``images`` and task ``denoise``: noise as asked, and denoising that really denoises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sparseland import metrics, registry
from sparseland.errors import ConfigError, DataNotFoundError
from sparseland.operators import dct_dictionary
from sparseland.plugins.datasets.natural_images import load_image
from sparseland.plugins.models.patch_denoising import denoise_with_patches
from sparseland.runner import run
from sparseland.spec import validate


def crop_file(tmp_path: Path, size: int = 96) -> Path:
    from PIL import Image

    crop = (load_image("camera")[200 : 200 + size, 200 : 200 + size].numpy() * 255).round()
    path = tmp_path / "crop.png"
    Image.fromarray(crop.astype(np.uint8)).save(path)
    return path


def test_noise_has_the_asked_sigma_and_seed() -> None:
    dm = registry.build("dataset", "images", image="camera", sigma=25.0, seed=0, n_train=100)
    dm.setup()
    noise = dm.noisy_image - dm.clean_image
    assert dm.clean_image.shape == (512, 512)
    assert dm.sigma == pytest.approx(25 / 255)
    assert float(noise.std()) == pytest.approx(25 / 255, rel=0.01)
    again = registry.build("dataset", "images", image="camera", sigma=25.0, seed=0, n_train=100)
    again.setup()
    assert torch.equal(again.noisy_image, dm.noisy_image)
    assert dm.splits["train"].x.shape == (100, 64)


def test_user_file_and_missing_file(tmp_path: Path) -> None:
    dm = registry.build("dataset", "images", image=str(crop_file(tmp_path)), n_train=10)
    dm.setup()
    assert dm.clean_image.shape == (96, 96)
    missing = registry.build("dataset", "images", image=str(tmp_path / "nope.png"))
    with pytest.raises(DataNotFoundError, match=r"nope\.png"):
        missing.setup()


def test_patch_denoising_with_the_dct_gains_several_db(tmp_path: Path) -> None:
    """A broken pipeline (no averaging, wrong ε, patches misplaced) cannot gain 4 dB."""
    clean = load_image("camera")[200:296, 200:296]
    sigma = 25 / 255
    noisy = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    estimate = denoise_with_patches(noisy, sigma, dct_dictionary(8, 256), 8)
    before = metrics.psnr(clean, noisy, 1.0)
    after = metrics.psnr(clean, estimate.clamp(0, 1), 1.0)
    assert after - before > 4.0, (before, after)


def test_denoise_refuses_a_whitening_preprocessor(make_config) -> None:
    cfg = make_config("dataset=images", "task=denoise", "preprocess=zca", small=False)
    with pytest.raises(ConfigError, match="preprocess"):
        validate(cfg)


@pytest.mark.slow
def test_ksvd_denoising_run_end_to_end(make_config, outputs: Path, tmp_path: Path) -> None:
    from conftest import store

    sigma = 25.0
    eps = 1.15 * sigma / 255 * 8  # the omp pursuit bounds ‖x − Dh‖₂ (8×8 patches)
    cfg = make_config(
        "dataset=images",
        f"dataset.image={crop_file(tmp_path)}",
        f"dataset.sigma={sigma}",
        "dataset.n_train=4000",
        "dataset.n_val=500",
        "dataset.batch_size=2000",
        "task=denoise",
        "preprocess=none",
        "learner=ksvd",
        "pursuit=omp",
        "pursuit.k=32",
        f"pursuit.eps={eps}",
        "model.init=dct",
        "model.n_atoms=128",
        "trainer.max_epochs=4",
        "trainer.val_check_interval=1.0",
        "logger.experiment=denoise",
        small=False,
    )
    result = run(cfg, run_dir=tmp_path / "run")
    assert result["test/psnr"] - result["test/psnr_noisy"] > 5.0, result
    assert 0.0 < result["test/ssim"] <= 1.0
    client = store(outputs)
    (found,) = client.search_runs([client.get_experiment_by_name("denoise").experiment_id])
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"denoised.png", "noisy.png", "atoms.png"} <= artifacts


@pytest.mark.parametrize("recipe", ["denoise_tv", "denoise_wavelet"])
def test_reference_recipes_equal_scikit_image(recipe: str, make_config, tmp_path: Path) -> None:
    """The non-learned rows of the denoise table are scikit-image's own denoisers, run as recipes
    (the wavelet one needs PyWavelets, a dependency)."""
    from skimage.restoration import denoise_tv_chambolle, denoise_wavelet

    sigma = 25.0
    cfg = make_config(
        f"recipe={recipe}",
        "dataset=images",
        f"dataset.image={crop_file(tmp_path)}",
        f"dataset.sigma={sigma}",
        "dataset.n_train=64",
        "dataset.n_val=64",
        "task=denoise",
        "logger.experiment=references",
        small=False,
    )
    result = run(cfg, run_dir=tmp_path / "run")
    dm = registry.build(
        "dataset", "images", image=str(crop_file(tmp_path)), sigma=sigma, n_train=64
    )
    dm.setup()
    noisy, s = dm.noisy_image.double().numpy(), sigma / 255
    if recipe == "denoise_tv":
        expected = denoise_tv_chambolle(noisy, weight=0.9 * s)
    else:
        expected = denoise_wavelet(
            noisy, sigma=s, wavelet="db2", mode="soft", method="BayesShrink", rescale_sigma=True
        )
    clean = dm.clean_image.double()
    expected_psnr = metrics.psnr(clean, torch.from_numpy(expected).clamp(0, 1), 1.0)
    assert result["test/psnr"] == pytest.approx(float(expected_psnr), abs=1e-3)
    assert result["test/psnr"] - result["test/psnr_noisy"] > 3.0, result


@pytest.mark.parametrize("recipe", ["denoise_cnn", "denoise_dae", "denoise_cscnet"])
@pytest.mark.parametrize("image", ["camera", "astronaut", "moon"])
def test_neural_recipes_train_on_none_of_the_table_images(
    recipe: str, image: str, make_config
) -> None:
    """Every test image of the denoise_table preset is held out of the networks' training."""
    cfg = make_config(
        "experiment=denoise_table", f"recipe={recipe}", f"dataset.image={image}", small=False
    )
    validate(cfg)
    assert image not in cfg.dataset.train_images
    assert cfg.trainer.max_steps > 0 and cfg.trainer.max_epochs == -1
