"""The cluster launcher path for real: submitit's local executor runs a sweep (each job its own
process, as on SLURM), with one MLflow parent, a child per job and finished jobs skipped; the
SLURM launcher config differs from the local one only in the executor."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TINY, run_app, store
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from sparseland.app import config_dir


def submitit_sweep(outputs: Path, cwd: Path) -> None:
    result = run_app(
        "-m",
        "seed=0,1",
        "hydra/launcher=submitit_local",
        "hydra.launcher.cpus_per_task=1",
        "logger.experiment=cluster",
        f"paths.outputs={outputs}",
        *TINY,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_submitit_local_sweep_parent_children_and_skip(outputs: Path, tmp_path: Path) -> None:
    submitit_sweep(outputs, tmp_path)
    client = store(outputs)
    experiment = client.get_experiment_by_name("cluster")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("sparseland.kind") == "sweep"]
    kids = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1
    assert sorted(k.data.params["seed"] for k in kids) == ["0", "1"]
    assert {k.data.tags["mlflow.parentRunId"] for k in kids} == {parents[0].info.run_id}
    assert all(k.info.status == "FINISHED" for k in kids)
    assert all("test/objective" in k.data.metrics for k in kids)
    assert {k.data.params["threads.used"] for k in kids} == {"1"}  # cpus_per_task

    # Everything finished with the same config and code: nothing runs again, and the new
    # parent lists each job as a reused child pointing at the run it reuses.
    submitit_sweep(outputs, tmp_path)
    again = client.search_runs([experiment.experiment_id])
    parents_again = [r for r in again if r.data.tags.get("sparseland.kind") == "sweep"]
    reused = [r for r in again if r.data.tags.get("sparseland.kind") == "reused"]
    real = [
        r
        for r in again
        if "mlflow.parentRunId" in r.data.tags and r.data.tags.get("sparseland.kind") != "reused"
    ]
    assert {r.info.run_id for r in real} == {k.info.run_id for k in kids}
    assert len(parents_again) == 2
    new_parent = next(p for p in parents_again if p.info.run_id != parents[0].info.run_id)
    assert {r.data.tags["mlflow.parentRunId"] for r in reused} == {new_parent.info.run_id}
    assert sorted(r.data.tags["sparseland.reused_from"] for r in reused) == sorted(
        k.info.run_id for k in kids
    )


def composed(launcher: str) -> dict:
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    data = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(data, dict)
    return data


def test_slurm_config_differs_from_local_only_in_the_executor() -> None:
    local, slurm = composed("submitit_local"), composed("slurm")
    local_launcher, slurm_launcher = local["hydra"].pop("launcher"), slurm["hydra"].pop("launcher")
    for cfg in (local, slurm):  # what names the choice itself: the override and the choice
        cfg["hydra"]["runtime"]["choices"].pop("hydra/launcher")
        cfg["hydra"]["overrides"].pop("hydra")
    assert local == slurm  # the jobs, their sweep folders and the MLflow callback are the same
    assert local_launcher["_target_"].endswith("LocalLauncher")
    assert slurm_launcher["_target_"].endswith("SlurmLauncher")
    # Every setting of the local executor means the same on SLURM (submitit's shared queue
    # config); SLURM only adds scheduler settings.
    assert set(local_launcher) - {"_target_"} <= set(slurm_launcher)
    assert local_launcher["submitit_folder"] == slurm_launcher["submitit_folder"]
