"""Tiny real runs whose models the loading, apply and serving tests use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

CPU = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu"]

DICTIONARY = [
    "dataset.n_train=256",
    "dataset.n_val=32",
    "dataset.n_test=64",
    "model.n_atoms=16",
    *CPU,
]


def image_file(folder: Path, size: int = 40) -> Path:
    """A crop of camera() as an 8-bit PNG, the clean image of the denoising runs."""
    from PIL import Image

    from sparseland.plugins.datasets.images import load_image

    crop = load_image("camera")[220 : 220 + size, 220 : 220 + size].numpy()
    path = folder / "clean.png"
    Image.fromarray((crop * 255.0).round().astype(np.uint8)).save(path)
    return path


def csc_denoiser(image: Path) -> list[str]:
    return [
        "model=csc",
        "pursuit=csc_admm",
        "task=denoise",
        "dataset=images",
        "~preprocess",
        "~learner",
        f"dataset.image={image}",
        "dataset.n_train=32",
        "dataset.n_val=8",
        "dataset.batch_size=16",
        "model.n_filters=4",
        "pursuit.max_iter=10",
        *CPU,
    ]


def dae_denoiser(image: Path) -> list[str]:
    return [
        "model=dae",
        "model.channels=[4,8]",
        "task=denoise",
        "dataset=images",
        "dataset.train_on=clean",
        "preprocess=none",
        f"dataset.image={image}",
        "dataset.n_train=64",
        "dataset.n_val=16",
        "dataset.batch_size=32",
        *CPU,
    ]


def only_run(outputs: Path, experiment: str) -> str:
    client = MlflowClient(tracking_uri=f"sqlite:///{outputs / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return str(run.info.run_id)


def tracking_uri(outputs: Path) -> str:
    return f"sqlite:///{outputs / 'mlflow.db'}"
