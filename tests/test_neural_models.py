"""CNN (classifier, denoiser), DAE, PSD, LISTA: each overfits a tiny batch and trains one
step through a real Lightning Trainer on CPU."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
from conftest import bare_trainer
from torch.utils.data import DataLoader

from sparseland import build
from sparseland.errors import ConfigError
from sparseland.interfaces import ModelContext, SparselandDataModule
from sparseland.plugins.neural.blocks import denoise_whole_image, dihedral
from sparseland.registry import get, make_config


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """Tiny tensors: one thread is much faster than two on a shared, busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def datamodule(x: torch.Tensor, n_classes: int = 0) -> SparselandDataModule:
    dm = SparselandDataModule(config=None)
    dm.signal_shape = tuple(x.shape[1:])
    dm.n_classes = n_classes
    dm.splits = {"train": SimpleNamespace(x=x)}  # type: ignore[attr-defined]
    return dm


def smooth_images(n: int, side: int, seed: int = 0) -> torch.Tensor:
    """Images in [0, 1] with structure (sums of a few random blurred blobs)."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, side // 4, side // 4, generator=gen)
    return torch.nn.functional.interpolate(coarse, size=(side, side), mode="bilinear")


def batch_for(name: str) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    if name == "cnn_classifier":
        x = torch.rand(16, 1, 8, 8, generator=gen)
        return {"x": x, "y": torch.arange(16) % 4}
    if name in ("cnn_denoiser", "dae", "cscnet"):
        clean = smooth_images(4, 16)
        return {"x": clean + 0.1 * torch.randn(clean.shape, generator=gen), "clean": clean}
    D = torch.randn(16, 24, generator=gen)
    codes = torch.randn(32, 24, generator=gen) * (torch.rand(32, 24, generator=gen) < 0.2)
    return {"x": codes @ (D / D.norm(dim=0)).T}


MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "cnn_classifier": ("cnn", {"channels": [8, 16], "lr": 1e-2}),
    "cnn_denoiser": ("cnn", {"mode": "denoiser", "depth": 4, "width": 16, "lr": 3e-3}),
    "dae": ("dae", {"channels": [16, 32], "lr": 3e-3}),
    "cscnet": (
        "cscnet",
        {"n_filters": 8, "filter_size": 5, "stride": 2, "unfoldings": 3, "lr": 1e-2},
    ),
    "psd": ("psd", {"n_atoms": 48, "lr": 1e-2}),
    "lista": (
        "lista",
        {"n_layers": 4, "n_atoms": 24, "init": "gaussian", "lr": 1e-2, "target": "fista"},
    ),
    "lista_cp": (
        "lista",
        {
            "n_layers": 4,
            "n_atoms": 24,
            "init": "gaussian",
            "lr": 1e-2,
            "target": "fista",
            "coupled": True,
            "momentum": True,
            "threshold": "input_norm",
        },
    ),
}


def build_model(key: str) -> tuple[Any, dict[str, torch.Tensor]]:
    name, params = MODELS[key]
    batch = batch_for(key)
    n_classes = int(batch["y"].max()) + 1 if "y" in batch else 0
    pursuit = build("pursuit", "fista", lam=0.01, max_iter=100, tol=1e-6, compute_gap=False)
    context = ModelContext(datamodule(batch["x"], n_classes), pursuit=pursuit)
    return get("model", name).cls(make_config("model", name, **params), context), batch


@pytest.mark.parametrize("key", list(MODELS))
def test_model_overfits_a_tiny_batch(key: str) -> None:
    torch.manual_seed(0)
    model, batch = build_model(key)
    optimizer = model.configure_optimizers()
    losses = []
    for _ in range(150):
        loss, _ = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])


@pytest.mark.parametrize("key", list(MODELS))
def test_model_trains_one_step_through_lightning(key: str, tmp_path: Any) -> None:
    model, batch = build_model(key)
    rows = [{k: v[i] for k, v in batch.items()} for i in range(batch["x"].shape[0])]
    loader = DataLoader(rows, batch_size=8)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = bare_trainer(tmp_path, max_steps=1)
    trainer.fit(model, train_dataloaders=loader)
    assert trainer.global_step == 1
    changed = [not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters())]
    assert any(changed)
    atoms = model.atoms()
    assert atoms is None or (atoms.ndim == 3 and torch.isfinite(atoms).all())


@pytest.mark.parametrize("key", ["cnn_denoiser", "dae", "cscnet"])
def test_denoise_image_keeps_the_shape_and_range(key: str) -> None:
    model, _ = build_model(key)
    noisy = torch.rand(37, 50)  # odd sizes: the DAE's strides must not lose pixels
    out = model.denoise_image(noisy, sigma=25.0)
    assert out.shape == noisy.shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert model.training  # denoise_image restores the mode it found


def test_cnn_classifier_predicts_labels_and_refuses_to_denoise() -> None:
    model, batch = build_model("cnn_classifier")
    labels = model.classify(batch["x"])
    assert labels.shape == (16,) and labels.dtype == torch.int64
    with pytest.raises(ConfigError, match="classifier"):
        model.denoise_image(torch.rand(8, 8), 25.0)


def test_dae_losses_differ_as_documented() -> None:
    from sparseland.plugins.neural.blocks import reconstruction_loss

    out, target = torch.tensor([0.0, 0.0]), torch.tensor([0.5, 2.0])
    assert float(reconstruction_loss(out, target, "l2")) == pytest.approx((0.25 + 4) / 2)
    assert float(reconstruction_loss(out, target, "l1")) == pytest.approx(1.25)
    mixed = reconstruction_loss(out, target, "mixed", 0.25)
    assert float(mixed) == pytest.approx(0.75 * 2.125 + 0.25 * 1.25)


def test_bad_configs_name_the_field() -> None:
    with pytest.raises(ConfigError, match="mode"):
        make_config("model", "cnn", mode="segmenter")
    with pytest.raises(ConfigError, match="loss"):
        make_config("model", "dae", loss="huber")
    with pytest.raises(ConfigError, match="encoder"):
        make_config("model", "psd", encoder="relu6")
    with pytest.raises(ConfigError, match="n_layers"):
        make_config("model", "lista", n_layers=0)


@pytest.mark.slow
def test_cnn_denoiser_runs_the_denoise_task_end_to_end(make_config: Any, tmp_path: Any) -> None:
    from sparseland.runner import run

    cfg = make_config(
        "model=cnn",
        "model.mode=denoiser",
        "model.depth=3",
        "model.width=8",
        "dataset=images",
        "dataset.train_on=clean",
        "dataset.n_train=256",
        "dataset.n_val=64",
        "dataset.batch_size=64",
        "task=denoise",
        "preprocess=none",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        small=False,
    )
    metrics = run(cfg, run_dir=tmp_path / "run")
    assert {"test/psnr", "test/ssim", "test/psnr_noisy"} <= set(metrics)
    assert metrics["test/psnr"] == metrics["test/psnr"]  # a number, not NaN


def test_denoisers_refuse_to_train_on_the_noisy_test_image(make_config: Any) -> None:
    from sparseland.spec import validate

    for model in ("model=dae", "model=cnn", "model=cscnet"):
        overrides = [model, "dataset=images", "dataset.train_on=noisy", "task=denoise"]
        if model == "model=cnn":
            overrides.append("model.mode=denoiser")
        with pytest.raises(ConfigError, match="train_on=clean"):
            validate(make_config(*overrides, small=False))


def test_dihedral_symmetries_are_eight_distinct_and_inverted_exactly() -> None:
    x = torch.arange(12.0).reshape(1, 1, 3, 4)  # not square, no symmetry of its own
    images = [dihedral(x, i) for i in range(8)]
    assert len({tuple(image.shape) + tuple(image.flatten().tolist()) for image in images}) == 8
    for i, image in enumerate(images):
        assert torch.equal(dihedral(image, i, inverse=True), x)


def test_self_ensemble_averages_the_restorations_of_the_eight_symmetric_views() -> None:
    """Against an independent construction of the group (rotations by 90°, then a mirror),
    with a restore that is not equivariant (a one-pixel shift and a ramp), and with padding to
    a stride multiple as for the DAE."""
    gen = torch.Generator().manual_seed(0)
    noisy = torch.rand(10, 13, generator=gen)

    def restore(t: torch.Tensor) -> torch.Tensor:
        ramp = torch.linspace(0.0, 0.3, t.shape[-1])
        return 0.5 * torch.roll(t, 1, dims=-1) + ramp

    def padded(t: torch.Tensor) -> torch.Tensor:
        h, w = t.shape
        p = torch.nn.functional.pad(t[None, None], (0, (-w) % 4, 0, (-h) % 4), mode="reflect")
        return restore(p)[0, 0, :h, :w]

    views = []
    for r in range(4):
        views.append(torch.rot90(padded(torch.rot90(noisy, r)), -r))
        views.append(torch.rot90(padded(torch.rot90(noisy, r).flip(1)).flip(1), -r))
    expected = torch.stack(views).mean(0).clamp(0, 1)
    out = denoise_whole_image(restore, noisy, multiple=4, self_ensemble=True)
    torch.testing.assert_close(out, expected)
    plain = denoise_whole_image(restore, noisy, multiple=4)
    torch.testing.assert_close(plain, padded(noisy).clamp(0, 1))
    assert not torch.allclose(out, plain)


@pytest.mark.parametrize("key", ["cnn_denoiser", "dae", "psd"])
def test_every_neural_model_takes_the_cosine_schedule(key: str) -> None:
    name, params = MODELS[key]
    config = make_config("model", name, **{**params, "lr_schedule": "cosine", "lr_steps": 5})
    batch = batch_for(key)
    pursuit = build("pursuit", "fista", lam=0.01, max_iter=100, tol=1e-6, compute_gap=False)
    model = get("model", name).cls(config, ModelContext(datamodule(batch["x"]), pursuit=pursuit))
    configured = model.configure_optimizers()
    scheduler = configured["lr_scheduler"]["scheduler"]
    assert isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR)
    assert scheduler.T_max == 5
    with pytest.raises(ConfigError, match="lr_schedule"):
        make_config("model", name, lr_schedule="linear")
