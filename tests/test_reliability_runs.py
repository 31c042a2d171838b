"""Divergence, crash and resume, concurrent runs, reproducibility and safe loading."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import SMALL, run_app, store

from sparseland.errors import NonFiniteError
from sparseland.runner import run

TINY = [
    "dataset.n_train=512",
    "dataset.n_val=64",
    "dataset.n_test=128",
    "model.n_atoms=32",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.accelerator=cpu",
]


def test_divergence_stops_the_run_and_marks_it_failed_with_the_reason(
    make_config, outputs: Path
) -> None:
    cfg = make_config("pursuit=ista", "pursuit.step_scale=5.0", "logger.experiment=div")
    with pytest.raises(NonFiniteError, match="diverged"):
        run(cfg, run_dir=outputs / "run")
    client = store(outputs)
    (failed,) = client.search_runs([client.get_experiment_by_name("div").experiment_id])
    assert failed.info.status == "FAILED"
    assert "diverged" in failed.data.tags["sparseland.failure"]


@pytest.mark.slow
def test_divergence_inside_a_sweep_lets_the_other_jobs_go_on(outputs: Path, tmp_path: Path) -> None:
    result = run_app(
        "-m",
        "pursuit=ista",
        "pursuit.step_scale=1.0,5.0",
        "logger.experiment=divsweep",
        f"paths.outputs={outputs}",
        *TINY,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    client = store(outputs)
    runs = client.search_runs([client.get_experiment_by_name("divsweep").experiment_id])
    status = {
        r.data.params["pursuit.step_scale"]: r.info.status
        for r in runs
        if "mlflow.parentRunId" in r.data.tags
    }
    assert status == {"1.0": "FINISHED", "5.0": "FAILED"}


def _app(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("sparseland")), *args]


@pytest.mark.slow
def test_killed_run_resumes_into_the_same_run_with_the_same_result(
    outputs: Path, tmp_path: Path
) -> None:
    args = [
        *SMALL,
        "dataset.n_train=4096",
        "trainer.max_epochs=3",
        "logger.experiment=resume",
        f"paths.outputs={outputs}",
    ]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen(
        _app(*args, f"hydra.run.dir={killed_dir}"),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoint = killed_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.3)  # now inside the second epoch
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_id = (killed_dir / "mlflow_run_id.txt").read_text().strip()

    resumed = subprocess.run(
        _app(*args, f"resume={killed_dir}", f"hydra.run.dir={killed_dir}"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    full = subprocess.run(
        _app(*args, f"hydra.run.dir={tmp_path / 'full'}"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert full.returncode == 0, full.stderr[-2000:]

    client = store(outputs)
    runs = client.search_runs([client.get_experiment_by_name("resume").experiment_id])
    assert len(runs) == 2  # the resumed run logged into its own run, not a new one
    by_id = {r.info.run_id: r for r in runs}
    again = by_id.pop(run_id)
    (uninterrupted,) = by_id.values()
    assert again.info.status == "FINISHED" and "sparseland.resumed" in again.data.tags
    for key in ("test/objective", "test/l0", "test/psnr", "test/coherence"):
        assert again.data.metrics[key] == pytest.approx(uninterrupted.data.metrics[key], rel=1e-5)


@pytest.mark.slow
def test_eight_concurrent_runs_on_one_sqlite_store_are_all_recorded(
    outputs: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    procs = [
        subprocess.Popen(
            _app(
                *TINY,
                f"seed={i}",
                "logger.experiment=conc",
                f"paths.outputs={outputs}",
                f"hydra.run.dir={tmp_path / str(i)}",
            ),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-1500:] for e in errors if e]
    client = store(outputs)
    runs = client.search_runs([client.get_experiment_by_name("conc").experiment_id])
    assert len(runs) == 8 and all(r.info.status == "FINISHED" for r in runs)
    assert sorted(int(r.data.params["seed"]) for r in runs) == list(range(8))
    assert all("test/objective" in r.data.metrics for r in runs)


def test_same_config_and_seed_give_identical_metrics_and_provenance_is_recorded(
    make_config, outputs: Path
) -> None:
    first = run(make_config(*TINY[:5], "logger.experiment=repro"), run_dir=outputs / "a")
    second = run(make_config(*TINY[:5], "logger.experiment=repro"), run_dir=outputs / "b")
    assert first == {**second, "train_time_s": first["train_time_s"]}
    client = store(outputs)
    for r in client.search_runs([client.get_experiment_by_name("repro").experiment_id]):
        tags = r.data.tags
        assert tags["sparseland.version"] != "unknown"
        assert (
            len(tags["sparseland.git_commit"]) in (40, 7)
            or tags["sparseland.git_commit"] == "unknown"
        )
        assert "sparseland==" in tags["sparseland.plugin_packages"]
        assert "config.yaml" in {a.path for a in client.list_artifacts(r.info.run_id)}


def test_checkpoints_and_preprocessors_load_without_unpickling(make_config, outputs: Path) -> None:
    from safetensors.torch import load_file

    run(make_config(*TINY[:5], "logger.experiment=safe"), run_dir=outputs / "run")
    checkpoint = torch.load(outputs / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert "dictionary.weight" in checkpoint["state_dict"]
    client = store(outputs)
    (r,) = client.search_runs([client.get_experiment_by_name("safe").experiment_id])
    path = client.download_artifacts(r.info.run_id, "preprocessor.safetensors", str(outputs))
    state = load_file(path)
    assert set(state) == {"mean", "whiten", "colour"}
