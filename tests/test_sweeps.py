"""Sweeps: one parent per sweep, parallel jobs on SQLite lose nothing, finished jobs are skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_app, store

TINY = [
    "dataset.n_train=512",
    "dataset.n_val=64",
    "dataset.n_test=128",
    "model.n_atoms=32",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.accelerator=cpu",
]
SWEEP = ["pursuit.lam=0.05,0.1,0.2", "seed=0,1"]  # 6 jobs


def sweep(outputs: Path, cwd: Path, *extra: str) -> None:
    result = run_app(
        "-m",
        *SWEEP,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "logger.experiment=par",
        f"paths.outputs={outputs}",
        *TINY,
        *extra,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def children(outputs: Path) -> tuple[list, list]:
    client = store(outputs)
    experiment = client.get_experiment_by_name("par")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("sparseland.kind") == "sweep"]
    kids = [
        r
        for r in runs
        if "mlflow.parentRunId" in r.data.tags and r.data.tags.get("sparseland.kind") != "reused"
    ]
    return parents, kids


@pytest.mark.slow
def test_parallel_sweep_skip_finished_and_rerun_missing(outputs: Path, tmp_path: Path) -> None:
    sweep(outputs, tmp_path)
    parents, kids = children(outputs)
    assert len(parents) == 1
    assert len(kids) == 6
    assert all(k.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for k in kids)
    assert all(k.info.status == "FINISHED" for k in kids)
    assert len({(k.data.params["pursuit.lam"], k.data.params["seed"]) for k in kids}) == 6

    # Re-running the finished sweep runs nothing new; its parent lists every job as reused.
    sweep(outputs, tmp_path)
    parents, kids_again = children(outputs)
    assert len(kids_again) == 6
    (second,) = [p for p in parents if p.info.run_id != kids[0].data.tags["mlflow.parentRunId"]]
    client = store(outputs)
    listed = client.search_runs(
        [second.info.experiment_id], f"tags.`mlflow.parentRunId` = '{second.info.run_id}'"
    )
    assert sorted(r.data.tags["sparseland.reused_from"] for r in listed) == sorted(
        k.info.run_id for k in kids
    )

    # With one job's result deleted, only that job runs again.
    victim = kids[0]
    store(outputs).delete_run(victim.info.run_id)
    sweep(outputs, tmp_path)
    _, kids_final = children(outputs)
    assert len(kids_final) == 6
    new = [k for k in kids_final if k.info.run_id not in {c.info.run_id for c in kids}]
    assert len(new) == 1
    assert (new[0].data.params["pursuit.lam"], new[0].data.params["seed"]) == (
        victim.data.params["pursuit.lam"],
        victim.data.params["seed"],
    )
