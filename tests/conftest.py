"""Shared fixtures: composing real configs and reading a real MLflow store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from sparseland.app import config_dir, preflight, prepare

# Small sizes so an end-to-end run takes seconds on a 2-core CPU.
SMALL = [
    "dataset.n_train=2048",
    "dataset.n_val=256",
    "dataset.n_test=512",
    "model.n_atoms=64",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "trainer.accelerator=cpu",
]

# The smallest job that is still a real run: data, training, evaluation, metrics.
TINY = [
    "dataset.n_train=256",
    "dataset.n_val=32",
    "dataset.n_test=64",
    "model.n_atoms=16",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.accelerator=cpu",
    "logger.log_model=false",
]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# One torch thread per test process (and per subprocess a test starts): the suite runs on two
# xdist workers, and oversubscribed BLAS threads make small products 10-100x slower.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)
prepare()


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Small pursuit problems on one torch thread: on a busy machine the OpenMP hand-offs cost
    more than the arithmetic. Use with ``pytestmark = pytest.mark.usefixtures(...)``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    path = tmp_path / "outputs"
    path.mkdir()
    return path


@pytest.fixture
def make_config(outputs: Path) -> Callable[..., DictConfig]:
    def make(*overrides: str, small: bool = True) -> DictConfig:
        args = [*(SMALL if small else []), f"paths.outputs={outputs}", *overrides]
        preflight(args)  # exactly what the app checks before Hydra composes
        with initialize_config_dir(str(config_dir()), version_base="1.3"):
            return compose("config", overrides=args)

    return make


def store(outputs: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{outputs / 'mlflow.db'}")


def run_app(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real ``sparseland`` console script (Hydra app) in a subprocess."""
    exe = Path(sys.executable).with_name("sparseland")
    full_env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    full_env.update(env or {})
    return subprocess.run(
        [str(exe), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=600
    )


def bare_trainer(root: Path | None = None, **limits: object) -> L.Trainer:
    """A real Lightning Trainer on the CPU without logger, checkpoints, bars or summaries
    (``limits``: max_steps, max_epochs, ...), for tests that fit a model directly."""
    return L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=root,
        **limits,  # type: ignore[arg-type]
    )
