"""Tracking outages against a real ``mlflow server`` on 127.0.0.1: fail fast, or journal, sync."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, run_app
from mlflow.tracking import MlflowClient

from sparseland.tracking.server import MlflowServer

TINY = [
    "dataset.n_train=1024",
    "dataset.n_val=64",
    "dataset.n_test=128",
    "model.n_atoms=32",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.accelerator=cpu",
]
pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MlflowServer]:
    """A real MLflow tracking server on 127.0.0.1 (SQLite store), stopped by a crash (SIGKILL)."""
    root = tmp_path / "server"
    srv = MlflowServer(f"sqlite:///{root / 'server.db'}", root / "artifacts", port=free_port())
    yield srv
    srv.stop(signal.SIGKILL)


def sync(run_dir: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("sparseland-sync")
    return subprocess.run([str(exe), str(run_dir)], capture_output=True, text=True, timeout=120)


def test_server_down_fails_fast_before_training(server: MlflowServer, tmp_path: Path) -> None:
    start = time.time()
    result = run_app(
        *TINY,
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
        env={"MLFLOW_TRACKING_URI": server.uri},
    )
    assert result.returncode != 0
    assert "unreachable" in result.stderr and server.uri in result.stderr
    assert "logger.offline=true" in result.stderr  # the message says what to do
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()  # no training happened
    assert time.time() - start < 60


def test_offline_run_is_journaled_and_synced_later(server: MlflowServer, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_app(
        *TINY,
        "logger.offline=true",
        "logger.experiment=outage",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
        env={"MLFLOW_TRACKING_URI": server.uri},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run_dir / "tracking_journal.jsonl").exists()

    server.start()
    synced = sync(run_dir)
    assert synced.returncode == 0, synced.stderr
    client = MlflowClient(server.uri)
    (found,) = client.search_runs([client.get_experiment_by_name("outage").experiment_id])
    assert found.info.status == "FINISHED"
    assert {"test/objective", "test/l0", "train_time_s"} <= set(found.data.metrics)
    assert found.data.params["pursuit.name"] == "fista"
    assert "atoms.png" in {a.path for a in client.list_artifacts(found.info.run_id)}


def test_server_stopped_mid_run_loses_nothing(server: MlflowServer, tmp_path: Path) -> None:
    server.start()
    run_dir = tmp_path / "run"
    exe = Path(sys.executable).with_name("sparseland")
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.uri}
    proc = subprocess.Popen(
        [
            str(exe),
            *TINY,
            "trainer.max_epochs=6",
            "logger.experiment=midrun",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    client = MlflowClient(server.uri)
    deadline = time.time() + 300
    run_id = None
    while time.time() < deadline and proc.poll() is None:  # wait until training has logged
        if (run_dir / "mlflow_run_id.txt").exists():
            run_id = (run_dir / "mlflow_run_id.txt").read_text().strip()
            if client.get_metric_history(run_id, "val/objective"):
                break
        time.sleep(0.2)
    assert proc.poll() is None and run_id, "the run ended before the server could be stopped"
    server.stop(signal.SIGKILL)
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output[-2000:]
    assert "sparseland-sync" in output  # the run said how to upload what it journaled

    server.start()
    synced = sync(run_dir)
    assert synced.returncode == 0, synced.stderr
    found = client.get_run(run_id)
    assert found.info.status == "FINISHED"
    assert {"test/objective", "test/psnr", "train_time_s"} <= set(found.data.metrics)
    assert len(client.get_metric_history(run_id, "val/objective")) >= 2
    assert "atoms.png" in {a.path for a in client.list_artifacts(run_id)}
