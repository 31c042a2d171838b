"""Parallel sweep jobs on a small CPU: 8 jobs one after another against joblib with 2 and 4 workers.

    python benchmarks/parallel_sweep.py            # short (about 2 s) and longer (about 7 s) jobs
    python benchmarks/parallel_sweep.py --jobs 8 --sizes short   # one job size only

Each configuration runs the same 8-job sweep through the real ``sparseland -m`` in a fresh
output folder (so no job is skipped as already finished), with ``threads: auto``: every joblib
job runs torch and BLAS on its share of the cores. Workers start from the preloaded fork server
(``workers.preload``, sparseland/worker_start.py); one row starts them as loky's fresh
interpreters instead. The wall time of the whole sweep, its ratio to the jobs one after another,
the load average before and after (the CPU may be shared) and the threads each job used land in
benchmarks/results/parallel_sweep.json and .md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness
from mlflow.tracking import MlflowClient

JOB = [
    "dataset.n_train=4096",
    "dataset.n_val=256",
    "dataset.n_test=512",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.accelerator=cpu",
    "logger.log_model=false",
]
HEADER = [
    "launcher",
    "wall s",
    "vs one after another",
    "threads per job",
    "load avg before",
    "load avg after",
]
SIZES = {  # extra overrides per job size
    "short": [],
    "longer": ["dataset.n_train=16384", "dataset.n_test=2048", "trainer.max_epochs=2"],
}
LAUNCHERS = {
    "one after another": ["hydra/launcher=basic"],
    "joblib, 2 workers": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "joblib, 4 workers": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=4"],
    "joblib, 4 workers, loky start (workers.preload=false)": [
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=4",
        "workers.preload=false",
    ],
}


def sweep(launcher: list[str], jobs: int, overrides: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        outputs = Path(tmp) / "outputs"
        exe = Path(sys.executable).with_name("sparseland")
        env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI",)}
        load_before = harness.load_average()
        start = time.perf_counter()
        done = subprocess.run(
            [str(exe), "-m", f"seed=range({jobs})", *launcher, *JOB, *overrides,
             f"paths.outputs={outputs}"],
            cwd=tmp, env=env, capture_output=True, text=True,
        )  # fmt: skip
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        client = MlflowClient(f"sqlite:///{outputs / 'mlflow.db'}")
        runs = client.search_runs([client.get_experiment_by_name("sparseland").experiment_id])
        kids = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
        if len(kids) != jobs or any(k.info.status != "FINISHED" for k in kids):
            raise SystemExit(f"{launcher}: {len(kids)} of {jobs} jobs finished")
        return {
            "wall_s": round(wall, 1),
            "threads_per_job": sorted({k.data.params["threads.used"] for k in kids}),
            "load_avg_before": load_before,
            "load_avg_after": harness.load_average(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    data: dict[str, Any] = {"jobs": args.jobs, "sizes": {}, "machine": harness.machine()}
    lines = [
        "# Parallel sweep jobs on a small CPU",
        "",
        f"{args.jobs} jobs of `sparseland -m seed=range({args.jobs}) {' '.join(JOB)}` (plus the "
        f"size's overrides), `threads: auto`, on {os.cpu_count()} cores; wall time of the whole "
        "sweep (start-up, every job, MLflow) by `python benchmarks/parallel_sweep.py`, one "
        "configuration after another in one run.",
        "",
    ]
    for size in args.sizes:
        results = {name: sweep(launcher, args.jobs, SIZES[size]) for name, launcher in
                   LAUNCHERS.items()}  # fmt: skip
        data["sizes"][size] = {"overrides": SIZES[size], "results": results}
        base = results["one after another"]["wall_s"]
        rows = [
            [name, r["wall_s"], f"{r['wall_s'] / base:.2f}×", ", ".join(r["threads_per_job"]),
             r["load_avg_before"], r["load_avg_after"]]
            for name, r in results.items()
        ]  # fmt: skip
        lines += [
            f"## {size} jobs: `{' '.join(SIZES[size]) or 'no extra overrides'}`",
            "",
            *harness.table(HEADER, rows),
            "",
        ]
        harness.write("parallel_sweep", data, "\n".join(lines))
    lines += [
        "The load average counts every process on the machine: other work running at the same "
        "time slows every configuration, so compare rows of one run only.",
        "",
    ]
    harness.write("parallel_sweep", data, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
