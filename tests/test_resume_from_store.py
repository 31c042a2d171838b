"""``resume=<run id>``: a killed run continues from the checkpoint it uploaded to the tracking
store, with its run directory gone, and ends with the metrics of an uninterrupted run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SMALL, store


def _app(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("sparseland")), *args]


@pytest.mark.slow
def test_killed_run_resumes_by_run_id_with_its_run_directory_removed(
    outputs: Path, tmp_path: Path
) -> None:
    args = [
        *SMALL,
        "dataset.n_train=4096",
        "trainer.max_epochs=3",
        "logger.experiment=resume_id",
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
    deadline = time.time() + 300
    uploaded: list[Path] = []
    while not uploaded and time.time() < deadline and proc.poll() is None:
        uploaded = list((outputs / "mlartifacts").glob("*/*/artifacts/checkpoints/last.ckpt"))
        time.sleep(0.02)
    time.sleep(0.3)  # the upload is complete; now inside the second epoch
    assert uploaded, "no checkpoint was uploaded to the run's artifacts"
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_id = (killed_dir / "mlflow_run_id.txt").read_text().strip()
    shutil.rmtree(killed_dir)  # another machine: only the tracking store is shared

    resumed = subprocess.run(
        _app(*args, f"resume={run_id}", f"hydra.run.dir={tmp_path / 'elsewhere'}"),
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
    runs = client.search_runs([client.get_experiment_by_name("resume_id").experiment_id])
    assert len(runs) == 2  # the resumed run logged into its own run, not a new one
    by_id = {r.info.run_id: r for r in runs}
    again = by_id.pop(run_id)
    (uninterrupted,) = by_id.values()
    assert again.info.status == "FINISHED" and "sparseland.resumed" in again.data.tags
    for key in ("test/objective", "test/l0", "test/psnr", "test/coherence"):
        assert again.data.metrics[key] == pytest.approx(uninterrupted.data.metrics[key], rel=1e-5)


def test_resume_by_an_unknown_run_id_names_the_store(make_config, outputs: Path) -> None:
    from sparseland.errors import SparselandError
    from sparseland.runner import run

    cfg = make_config("resume=0123456789abcdef0123456789abcdef", "logger.experiment=none")
    with pytest.raises(SparselandError, match=r"no such run in the tracking store sqlite:"):
        run(cfg, run_dir=outputs / "run")
