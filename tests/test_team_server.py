"""A team's tracking server for real: ``mlflow server`` on a PostgreSQL backend store on
127.0.0.1, a 32-job joblib sweep into it, a server crash in the middle of a sweep, and two
Optuna sweepers sharing one study in the same PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TINY, free_port
from mlflow.tracking import MlflowClient

from sparseland.threads import available_cores
from sparseland.tracking.postgres import missing_reason
from sparseland.tracking.server import TeamServer

REASON = missing_reason()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(REASON is not None, reason=f"no PostgreSQL here: {REASON}"),
]

JOBS = 32
CRASH_JOBS = 12


@pytest.fixture(scope="module")
def team() -> Iterator[TeamServer]:
    # Not under pytest's tmp folder: that is private to root, and PostgreSQL runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="sparseland-team-"))
    root.chmod(0o755)
    server = TeamServer(root, port=free_port(), pg_port=free_port())
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def sparseland(*args: str, cwd: Path, uri: str) -> subprocess.Popen[str]:
    exe = Path(sys.executable).with_name("sparseland")
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    return subprocess.Popen(
        [str(exe), "-m", *args, f"paths.outputs={cwd / 'outputs'}", *TINY],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def joblib_sweep(
    experiment: str, jobs: int, cwd: Path, uri: str, *extra: str
) -> subprocess.Popen[str]:
    return sparseland(
        f"seed=range({jobs})",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=4",
        f"logger.experiment={experiment}",
        *extra,
        cwd=cwd,
        uri=uri,
    )


def finish(proc: subprocess.Popen[str]) -> str:
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output[-3000:]
    return output


def check_every_job_once(client: MlflowClient, experiment: str, jobs: int, output: str) -> list:
    parents, kids = sweep_runs(client, experiment)
    assert len(parents) == 1, output[-3000:]
    seeds = sorted(int(k.data.params["seed"]) for k in kids)
    assert seeds == list(range(jobs)), output[-3000:]  # every job once
    assert {k.data.tags["mlflow.parentRunId"] for k in kids} == {parents[0].info.run_id}
    assert all(k.info.status == "FINISHED" for k in kids)
    for kid in kids:
        assert {"test/objective", "test/psnr", "train_time_s"} <= set(kid.data.metrics)
    return kids


def test_joblib_sweep_lands_in_postgres(team: TeamServer, tmp_path: Path) -> None:
    output = finish(joblib_sweep("team", JOBS, tmp_path, team.uri))
    client = MlflowClient(team.uri)
    kids = check_every_job_once(client, "team", JOBS, output)
    # Four workers on this machine's cores: each job ran on its share of them.
    share = str(max(1, available_cores() // 4))
    assert {k.data.params["threads.used"] for k in kids} == {share}
    assert client.list_artifacts(kids[0].info.run_id)  # artifacts went through the server


def test_server_crash_mid_sweep_loses_nothing(team: TeamServer, tmp_path: Path) -> None:
    """Jobs journal what the server cannot take (logger.offline=true) and go on;
    ``sparseland-sync`` uploads the journals once the server is back."""
    proc = joblib_sweep("crash", CRASH_JOBS, tmp_path, team.uri, "logger.offline=true")
    client = MlflowClient(team.uri)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        found = client.get_experiment_by_name("crash")
        if found and len(client.search_runs([found.experiment_id], "status = 'FINISHED'")) >= 4:
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the sweep ended before the server could be killed"
    team.mlflow.stop(signal.SIGKILL)  # as a crash: no clean shutdown
    time.sleep(8)  # jobs run on through the outage
    team.mlflow.start()  # a new server process on the same database
    output = finish(proc)

    journals = sorted(tmp_path.glob("outputs/multirun/*/*/*/tracking_journal.jsonl"))
    assert journals, "no job noticed the outage"
    (sweep_dir,) = {j.parent.parent for j in journals}
    exe = Path(sys.executable).with_name("sparseland-sync")  # the sweep's folder: every job
    synced = subprocess.run([str(exe), str(sweep_dir)], capture_output=True, text=True)
    assert synced.returncode == 0, synced.stderr[-3000:]
    check_every_job_once(client, "crash", CRASH_JOBS, output)


def test_two_optuna_sweepers_share_one_study(team: TeamServer, tmp_path: Path) -> None:
    """Two sweeper processes on one study name in PostgreSQL: the trials are shared (no trial
    twice, together exactly the budget), and every trial is a child run in MLflow."""
    import optuna

    from sparseland.tracking.optuna_storage import commit_schema_stamp

    per_sweeper, study = 3, "shared-search"
    workers = []
    for seed in (1, 2):  # each sweeper its own sampler seed, or both would propose the same
        folder = tmp_path / f"worker{seed}"
        folder.mkdir()
        workers.append(
            sparseland(
                "hparams_search=optuna",
                f"hydra.sweeper.storage={team.optuna_storage}",
                f"hydra.sweeper.study_name={study}",
                f"hydra.sweeper.n_trials={per_sweeper}",
                f"hydra.sweeper.sampler.seed={seed}",
                "logger.experiment=search",
                cwd=folder,
                uri=team.uri,
            )
        )
    outputs = [finish(worker) for worker in workers]

    commit_schema_stamp()
    trials = optuna.load_study(study_name=study, storage=team.optuna_storage).trials
    assert len(trials) == 2 * per_sweeper  # the budget, shared
    assert sorted(t.number for t in trials) == list(range(2 * per_sweeper))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)

    client = MlflowClient(team.uri)
    parents, kids = sweep_runs(client, "search")
    assert len(parents) == 2, outputs[0][-2000:]  # one parent per sweeper process
    assert {k.data.tags["mlflow.parentRunId"] for k in kids} <= {p.info.run_id for p in parents}
    assert all(k.info.status == "FINISHED" for k in kids)
    tried = sorted(t.params["pursuit.lam"] for t in trials)
    logged = sorted(float(k.data.params["pursuit.lam"]) for k in kids)
    assert logged == pytest.approx(tried, rel=1e-9)  # every trial once, as a child run
    values = sorted(t.value for t in trials)
    assert values == pytest.approx(sorted(k.data.metrics["test/psnr"] for k in kids), rel=1e-6)


def sweep_runs(client: MlflowClient, experiment: str) -> tuple[list, list]:
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    runs = client.search_runs([found.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("sparseland.kind") == "sweep"]
    return parents, [r for r in runs if "mlflow.parentRunId" in r.data.tags]
