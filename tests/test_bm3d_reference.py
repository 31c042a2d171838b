"""BM3D as a reference row: the model is the bm3d package's own denoiser, and without the
package the run fails with the install command."""

from __future__ import annotations

import sys

import pytest
import torch

from sparseland import metrics, registry
from sparseland.errors import ConfigError
from sparseland.interfaces import ModelContext
from sparseland.plugins.datasets.natural_images import load_image


def _model() -> object:
    dm = registry.build("dataset", "images", image="camera", n_train=16, n_val=16)
    config = registry.make_config("model", "bm3d")
    return registry.get("model", "bm3d").cls(config, ModelContext(datamodule=dm))


def test_bm3d_model_is_the_packages_denoiser() -> None:
    bm3d = pytest.importorskip("bm3d")
    clean = load_image("camera")[200:264, 200:264]
    sigma = 25 / 255
    noisy = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    out = _model().denoise_image(noisy, sigma)  # type: ignore[attr-defined]
    expected = bm3d.bm3d(noisy.double().numpy(), sigma_psd=sigma)
    torch.testing.assert_close(out.double(), torch.from_numpy(expected), atol=1e-6, rtol=0)
    assert metrics.psnr(clean, out.clamp(0, 1), 1.0) > metrics.psnr(clean, noisy, 1.0) + 5


def test_missing_bm3d_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bm3d", None)  # import bm3d now raises ImportError
    with pytest.raises(ConfigError, match=r"sparseland\[bench\]"):
        _model()
