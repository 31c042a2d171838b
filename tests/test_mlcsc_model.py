"""Model mlcsc: supervised training through the unfolded pursuit, per-layer sparsity, configs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from conftest import bare_trainer
from omegaconf import DictConfig
from torch.utils.data import DataLoader, TensorDataset

from sparseland import build
from sparseland.errors import ConfigError
from sparseland.interfaces import ModelContext, SparselandDataModule
from sparseland.plugins.convolutional.mlcsc_model import MLCSCConfig, MLCSCModel
from sparseland.spec import validate


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Bars(SparselandDataModule):
    """Two classes of 8×8 images: a vertical or a horizontal bar at a random place, + noise."""

    has_labels = True
    signal_kind = "image"

    def __init__(self, n: int = 192) -> None:
        super().__init__(SimpleNamespace(seed=0))
        gen = torch.Generator().manual_seed(0)
        y = torch.randint(2, (n,), generator=gen)
        x = 0.1 * torch.rand(n, 1, 8, 8, generator=gen)
        pos = torch.randint(8, (n,), generator=gen)
        for i in range(n):  # building the toy data set, not the method
            if y[i] == 0:
                x[i, 0, :, pos[i]] += 1.0
            else:
                x[i, 0, pos[i], :] += 1.0
        self.x, self.y = x, y
        self.signal_shape, self.n_classes = (1, 8, 8), 2

    def _loader(self, sl: slice) -> DataLoader:  # type: ignore[type-arg]
        def collate(rows: list[tuple[torch.Tensor, ...]]) -> dict[str, torch.Tensor]:
            return {"x": torch.stack([r[0] for r in rows]), "y": torch.stack([r[1] for r in rows])}

        return DataLoader(TensorDataset(self.x[sl], self.y[sl]), batch_size=32, collate_fn=collate)

    def train_dataloader(self) -> DataLoader:  # type: ignore[type-arg]
        return self._loader(slice(0, 128))

    def val_dataloader(self) -> DataLoader:  # type: ignore[type-arg]
        return self._loader(slice(128, 160))

    def test_dataloader(self) -> DataLoader:  # type: ignore[type-arg]
        return self._loader(slice(160, None))


SMALL = dict(channels=[4, 8], kernels=[3, 3], strides=[1, 2], paddings=[1, 1], lr=1e-2)


@pytest.mark.parametrize("pursuit", ["layered_thresholding", "ml_fista"])
def test_supervised_training_learns_and_reports_layer_sparsity(pursuit: str) -> None:
    torch.manual_seed(0)
    dm = Bars()
    extra = {} if pursuit == "layered_thresholding" else {"unfoldings": 2}
    model = MLCSCModel(
        MLCSCConfig(name="mlcsc", **SMALL),  # type: ignore[arg-type]
        ModelContext(datamodule=dm, pursuit=build("pursuit", pursuit, **extra)),
    )
    bare_trainer(max_epochs=12).fit(model, dm)
    model.eval()
    x = torch.cat([b["x"] for b in dm.test_dataloader()])
    y = torch.cat([b["y"] for b in dm.test_dataloader()])
    with torch.no_grad():
        accuracy = float((model.classify(x) == y).float().mean())
        metrics = model.layer_metrics(dm.test_dataloader())
    assert accuracy >= 0.9
    for i in (1, 2):
        sparsity = metrics[f"test/layer{i}_sparsity"]
        assert 0.0 < sparsity < 1.0
        with torch.no_grad():
            layer = model.representations(x)[i - 1]
        assert sparsity == pytest.approx(float((layer == 0).double().mean()), abs=1e-9)


def test_unsupervised_training_lowers_the_ml_bp_objective() -> None:
    torch.manual_seed(0)
    dm = Bars()
    dm.has_labels = False
    pursuit = build("pursuit", "ml_fista", lam=[0.05], unfoldings=10)
    model = MLCSCModel(
        MLCSCConfig(name="mlcsc", supervised=False, **SMALL),  # type: ignore[arg-type]
        ModelContext(datamodule=dm, pursuit=pursuit),
    )
    x = dm.x[:64]
    with torch.no_grad():
        before = float(model.objective(x, model.encode(x)).mean())
    bare_trainer(max_epochs=5).fit(model, dm)
    with torch.no_grad():
        after = float(model.objective(x, model.encode(x)).mean())
        assert model.decode(model.encode(x)).shape == x.shape
    assert after < 0.8 * before
    assert max(float(w.detach().flatten(1).norm(dim=1).max()) for w in model.weights) <= 1 + 1e-6


def test_a_single_layer_pursuit_is_refused(make_config: Callable[..., DictConfig]) -> None:
    cfg = make_config(
        "model=mlcsc", "pursuit=fista", "dataset=digits", "task=classify", small=False
    )
    with pytest.raises(ConfigError, match=r"multi-layer pursuit.*ml_ista"):
        validate(cfg)


@pytest.mark.slow
def test_end_to_end_classify_digits_logs_layer_sparsity(
    make_config: Callable[..., DictConfig], outputs: Path, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    from sparseland.runner import run

    cfg = make_config(
        "model=mlcsc",
        "pursuit=ml_ista",
        "pursuit.unfoldings=1",
        "task=classify",
        "dataset=digits",
        "~preprocess",
        "~learner",
        "model.channels=[8,16]",
        "model.kernels=[3,3]",
        "model.strides=[1,2]",
        "model.paddings=[1,1]",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        "trainer.accelerator=cpu",
        "task.pixels_baseline=false",
        small=False,
    )
    metrics = run(cfg, run_dir=tmp_path / "run")
    assert metrics["test/accuracy"] > 0.5
    client = MlflowClient(tracking_uri=f"sqlite:///{outputs / 'mlflow.db'}")
    (run_info,) = client.search_runs(client.search_experiments()[0].experiment_id)
    logged = run_info.data.metrics
    assert 0 < logged["test/layer1_sparsity"] < 1 and "test/layer2_sparsity" in logged


def _scaled_model(steps: str, pursuit: Any) -> MLCSCModel:
    torch.manual_seed(0)
    model = MLCSCModel(
        MLCSCConfig(name="mlcsc", steps=steps),  # the default 32-64-128 network
        ModelContext(datamodule=Bars(), pursuit=pursuit),
    )
    with torch.no_grad():  # weights and biases as training leaves them: larger, any sign
        for w in model.weights:
            w.mul_(3.0)
        for b in model.biases:
            b.uniform_(-0.3, 0.3)
    return model


def test_lipschitz_steps_keep_the_cnn_as_first_pass_and_the_unfoldings_stable() -> None:
    """With 1/L steps and τ_i = s_i λ_i the codes γ_i / s_i of ML-ISTA's first iteration are
    the CNN's for any weights, and 20 unfoldings stay bounded; unit steps on the same weights
    (‖D₁‖² ≈ 370 here) amplify every unfolding, which left the digits preset at chance."""
    x = Bars().x[:32]
    cnn = _scaled_model("unit", build("pursuit", "layered_thresholding"))
    first = _scaled_model("lipschitz", build("pursuit", "ml_ista", unfoldings=0))
    fista = _scaled_model("lipschitz", build("pursuit", "ml_fista", unfoldings=20))
    unit = _scaled_model("unit", build("pursuit", "ml_fista", unfoldings=20))
    with torch.no_grad():
        for a, b in zip(cnn.representations(x), first.representations(x)):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5 * float(a.abs().max()))
        scale = float(cnn.encode(x).abs().max())
        stable = fista.encode(x)
        fista.eval()  # eval uses the ‖D_i‖² tracked while training
        torch.testing.assert_close(fista.encode(x), stable, rtol=1e-3, atol=1e-4 * scale)
        diverged = unit.encode(x)
    assert torch.isfinite(stable).all() and float(stable.abs().max()) < 10 * scale
    assert not bool(torch.isfinite(diverged).all()) or float(diverged.abs().max()) > 1e6 * scale


def test_digits_features_recipe_learns_in_quick_mode(
    make_config: Callable[..., DictConfig], tmp_path: Path
) -> None:
    """Regression: ``experiment=digits_features quick=true`` left ML-CSC at chance (0.099 ±
    0.026): its 20 unfoldings with unit steps diverged on unit-norm atoms (‖D₁‖² ≈ 40)."""
    from sparseland.runner import run

    cfg = make_config(
        "recipe=features_mlcsc",  # ML-FISTA, 2 epochs with quick=true
        "dataset=digits",
        "task=classify",
        "quick=true",
        "trainer.enable_progress_bar=false",
        "trainer.accelerator=cpu",
        "task.pixels_baseline=false",
        small=False,
    )
    metrics = run(cfg, run_dir=tmp_path / "run")
    assert metrics["test/accuracy"] > 0.6
