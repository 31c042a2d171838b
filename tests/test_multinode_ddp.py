"""Multi-node data parallelism on localhost: two ``sparseland`` processes, one per "node"
(``trainer.num_nodes=2``, ``MASTER_ADDR=127.0.0.1``, ``NODE_RANK`` 0 and 1, gloo), train what
one process trains with the doubled batch: the online learner's dictionary to float tolerance,
and a neural model's (LISTA) loss curve and weights within tolerance."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import free_port, run_app, store
from test_learner_ddp import COMMON, TOLERANCE

pytestmark = pytest.mark.slow
ONLINE = [*COMMON, "learner=online"]
LISTA = [  # trained by back-propagation on the Lasso objective: deterministic given the data
    "dataset=synthetic",
    "preprocess=none",
    "model=lista",
    "model.init=gaussian",
    "model.target=lasso",
    "model.n_atoms=32",
    "pursuit=fista",
    "task=reconstruct",
    "dataset.n_train=1200",
    "dataset.n_val=200",
    "dataset.n_test=200",
    "trainer.max_epochs=2",
    "trainer.val_check_interval=1.0",
    "trainer.log_every_n_steps=1",
]
RUN = ["trainer=cpu", "trainer.enable_progress_bar=false", "logger.log_model=false"]


def one_process(tmp_path: Path, job: list[str], batch: int) -> Path:
    run_dir = tmp_path / "one"
    result = run_app(
        *job,
        *RUN,
        f"dataset.batch_size={2 * batch}",
        f"paths.outputs={tmp_path / 'outputs-one'}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def two_nodes(tmp_path: Path, job: list[str], batch: int) -> Path:
    """Two processes as two nodes; returns rank 0's run folder."""
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
            *job,
            *RUN,
            "trainer.num_nodes=2",
            "trainer.devices=1",
            "trainer.strategy=ddp_statistics",
            f"dataset.batch_size={batch}",
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
    # Rank 0 records the run for both nodes; node 1 records nothing.
    client = store(tmp_path / "outputs-node0")
    (recorded,) = client.search_runs([client.get_experiment_by_name("sparseland").experiment_id])
    assert recorded.info.status == "FINISHED"
    assert recorded.data.params["trainer.num_nodes"] == "2"
    assert not (tmp_path / "outputs-node1" / "mlflow.db").exists()
    return tmp_path / "node0"


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]


def loss_curve(outputs: Path, metric: str) -> list[float]:
    client = store(outputs)
    (run,) = client.search_runs([client.get_experiment_by_name("sparseland").experiment_id])
    history = sorted(client.get_metric_history(run.info.run_id, metric), key=lambda m: m.step)
    return [m.value for m in history]


def test_two_nodes_learn_the_dictionary_of_one_process(tmp_path: Path) -> None:
    one = weights(one_process(tmp_path, ONLINE, batch=300))
    two = weights(two_nodes(tmp_path, ONLINE, batch=300))
    assert (one["dictionary.weight"] - one["initial_dictionary"]).abs().max() > 0.1  # learned
    assert (one["dictionary.weight"] - two["dictionary.weight"]).abs().max() < TOLERANCE


def test_two_nodes_train_a_neural_model_as_one_process(tmp_path: Path) -> None:
    """DDP averages the two half-batch gradients: the gradient of the doubled batch."""
    one = weights(one_process(tmp_path, LISTA, batch=100))
    two = weights(two_nodes(tmp_path, LISTA, batch=100))
    curve_one = loss_curve(tmp_path / "outputs-one", "train/loss")
    curve_two = loss_curve(tmp_path / "outputs-node0", "train/loss")
    assert len(curve_one) == len(curve_two) >= 10
    assert curve_one[-1] < 0.9 * curve_one[0]  # it trained
    assert curve_two == pytest.approx(curve_one, rel=1e-4)
    for name in ("network.w_e", "network.s", "network.theta"):
        assert torch.allclose(one[name], two[name], rtol=1e-4, atol=1e-5), name
