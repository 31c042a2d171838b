"""Real runs through Hydra, Lightning and MLflow, checked through MLflow's API."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SMALL, run_app, store

from sparseland.runner import run

REQUIRED = (
    "test/objective",
    "test/mse",
    "test/psnr",
    "test/l0",
    "test/l1",
    "test/kurtosis",
    "test/coherence",
    "train_time_s",
)


@pytest.mark.slow
def test_dictionary_run_is_recorded_in_mlflow(make_config, outputs: Path, tmp_path: Path) -> None:
    cfg = make_config("logger.experiment=e2e")
    metrics = run(cfg, run_dir=tmp_path / "run")

    client = store(outputs)
    experiment = client.get_experiment_by_name("e2e")
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.status == "FINISHED"
    for key in REQUIRED:
        assert key in found.data.metrics, key
        assert found.data.metrics[key] == pytest.approx(metrics[key])
    # Learning helps: the learned dictionary codes held-out patches better than its start.
    assert found.data.metrics["test/objective"] < found.data.metrics["test/objective_initial"]
    history = client.get_metric_history(found.info.run_id, "val/objective")
    assert len(history) >= 3 and history[0].step == 0
    assert found.data.params["pursuit.name"] == "fista"
    assert found.data.params["pursuit.lam"] == str(cfg.pursuit.lam)
    assert found.data.tags["sparseland.version"] != "unknown"
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"atoms.png", "config.yaml", "preprocessor.safetensors"} <= artifacts
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_sweep_makes_one_parent_with_a_child_per_job(outputs: Path, tmp_path: Path) -> None:
    result = run_app(
        "-m",
        "pursuit.lam=0.05,0.1,0.2",
        "logger.experiment=sweep",
        f"paths.outputs={outputs}",
        *SMALL,
        "trainer.max_epochs=1",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    client = store(outputs)
    experiment = client.get_experiment_by_name("sweep")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("sparseland.kind") == "sweep"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == 3
    assert all(r.info.status == "FINISHED" for r in children)
    by_lam = sorted(children, key=lambda r: float(r.data.params["pursuit.lam"]))
    l0 = [r.data.metrics["test/l0"] for r in by_lam]
    assert l0[0] > l0[1] > l0[2], l0


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("pursuit=nope", "Could not find 'pursuit/nope'"),
        ("pursuit.lam=abc", "pursuit.lam"),
        ("pursuit.lam=-0.5", "pursuit.lam: must be >= 0"),
    ],
)
def test_bad_config_exits_nonzero_with_a_short_message_and_writes_nothing(
    override: str, expected: str, outputs: Path, tmp_path: Path
) -> None:
    result = run_app(override, f"paths.outputs={outputs}", cwd=tmp_path)
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) < 25  # one screen
    db = outputs / "mlflow.db"
    if db.exists():  # the store may exist, but it holds no run of this job
        client = store(outputs)
        experiments = client.search_experiments()
        assert not client.search_runs([e.experiment_id for e in experiments])
