"""Multi-node data parallelism on localhost: two ``sparseland`` processes, one per "node"
(``trainer.num_nodes=2``, ``MASTER_ADDR=127.0.0.1``, ``NODE_RANK`` 0 and 1, gloo), learn the
dictionary that one process learns with the doubled batch, to float tolerance."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_app, store
from test_learner_ddp import COMMON, TOLERANCE

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dictionary(run_dir: Path) -> torch.Tensor:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    return checkpoint["state_dict"]["dictionary.weight"]


def test_two_nodes_learn_the_dictionary_of_one_process(tmp_path: Path) -> None:
    one = tmp_path / "one"
    result = run_app(
        *COMMON,
        "learner=online",
        "trainer=cpu",
        "trainer.enable_progress_bar=false",
        "dataset.batch_size=600",
        "logger.log_model=false",
        f"paths.outputs={tmp_path / 'outputs-one'}",
        f"hydra.run.dir={one}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    port = str(free_port())
    exe = Path(sys.executable).with_name("sparseland")
    nodes = []
    for rank in (0, 1):
        env = {
            **{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "NODE_RANK": str(rank),
            "GLOO_SOCKET_IFNAME": "lo",
        }
        args = [
            *COMMON,
            "learner=online",
            "trainer=cpu",
            "trainer.num_nodes=2",
            "trainer.devices=1",
            "trainer.strategy=ddp_statistics",
            "trainer.enable_progress_bar=false",
            "dataset.batch_size=300",
            "logger.log_model=false",
            f"paths.outputs={tmp_path / f'outputs-node{rank}'}",
            f"hydra.run.dir={tmp_path / f'node{rank}'}",
        ]
        nodes.append(
            subprocess.Popen(
                [str(exe), *args],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    for node in nodes:
        output, _ = node.communicate(timeout=600)
        assert node.returncode == 0, output[-3000:]

    assert (dictionary(one) - dictionary(tmp_path / "node0")).abs().max() < TOLERANCE
    # Rank 0 records the run for both nodes; node 1 records nothing.
    client = store(tmp_path / "outputs-node0")
    (recorded,) = client.search_runs([client.get_experiment_by_name("sparseland").experiment_id])
    assert recorded.info.status == "FINISHED"
    assert recorded.data.params["trainer.num_nodes"] == "2"
    assert not (tmp_path / "outputs-node1" / "mlflow.db").exists()
