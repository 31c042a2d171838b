"""The example third-party package installs, registers, composes, runs a sweep and is compared.

The commands that load plugins run in fresh interpreters, so the entry points are read again
exactly as they would be for a user who has just run `pip install`.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sparseland.compare.cli import main as compare_main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sparseland-example-plugin"
DIST = "sparseland-example"
SMALL = [
    "dataset.n_train=512",
    "dataset.n_val=128",
    "dataset.n_test=256",
    "model.n_atoms=32",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # One thread per process: the test machine's few cores are shared (no oversubscription).
    # The default store (SQLite under paths.outputs), whatever the caller's environment says.
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # The example is installed into a private folder that only these subprocesses see, so
    # tests running in parallel against the shared environment never meet it.
    env["PYTHONPATH"] = os.pathsep.join([*map(str, _SITE), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


_SITE: list[Path] = []


@pytest.fixture(scope="module")
def example_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """pip-install a copy of the example (the build writes nothing into the repo) into a
    private target folder, put on the PYTHONPATH of the subprocesses that use it."""
    copy = tmp_path_factory.mktemp("src") / EXAMPLE.name
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__py*"))
    site = tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run(
        [*pip, "--target", str(site), str(copy)], check=True, cwd=copy.parent, timeout=300
    )
    _SITE.append(site)
    yield
    _SITE.remove(site)


@pytest.mark.slow
def test_example_plugin_installs_runs_and_is_compared(
    example_installed: None, tmp_path: Path
) -> None:
    # registered: listed by sparseland-plugins with its package and config fields
    listing = _run("-m", "sparseland.cli_plugins", "pursuit", cwd=tmp_path).stdout
    line = next(line for line in listing.splitlines() if line.strip().startswith("example_iht"))
    assert "sparseland_example.iht.IterativeHardThresholding" in line and DIST in line
    assert "n_nonzero: int = 4" in listing
    # every kind the example ships, listed together with the help of their fields
    listing = _run("-m", "sparseland.cli_plugins", "dataset", "preprocess", cwd=tmp_path).stdout
    assert "sparseland_example.sinusoids.SinusoidsDataModule" in listing
    assert "sparseland_example.standardize.Standardize" in listing
    assert "n_nonzero: int = 3  # cosines per signal" in listing
    assert "pursuit:" not in listing

    # composes and runs: the preset shipped in the package, narrowed to two jobs
    outputs = tmp_path / "outputs"
    _run(
        "-m", "sparseland.app", "-m", "experiment=example_sweep",
        "pursuit.n_nonzero=2,4", "seed=0", *SMALL, f"paths.outputs={outputs}",
        cwd=tmp_path,
    )  # fmt: skip
    client = MlflowClient(tracking_uri=f"sqlite:///{outputs / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("example_iht")  # named by the preset
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("sparseland.kind") == "sweep"]
    assert len(parents) == 1
    parent = parents[0].info.run_id
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent]
    assert sorted(r.data.params["pursuit.n_nonzero"] for r in children) == ["2", "4"]
    assert all(r.info.status == "FINISHED" for r in children)
    assert all(r.data.params["pursuit.name"] == "example_iht" for r in children)
    assert all(DIST in r.data.tags["sparseland.plugin_packages"] for r in children)

    # appears in the comparison (the command in this process: it needs no fresh entry points)
    out = tmp_path / "compare"
    compare_main(
        ["--parent", parent, "--tracking-uri", client.tracking_uri,
         "--metrics", "test/psnr,test/l0", "--group-by", "pursuit.name",
         "--x", "pursuit.n_nonzero", "--out", str(out)]
    )  # fmt: skip
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert [(r["pursuit.name"], r["pursuit.n_nonzero"]) for r in rows] == [
        ("example_iht", "2"),
        ("example_iht", "4"),
    ]
    for row in rows:  # the k-sparse constraint holds on the test set: mean ℓ0 ≤ k
        assert 0 < float(row["test/l0:mean"]) <= int(row["pursuit.n_nonzero"]) + 1e-9
    assert (out / "test-psnr_vs_pursuit-n_nonzero.png").exists()
    logged = {Path(a.path).name for a in client.list_artifacts(parent, "compare")}
    assert {"table.md", "table.csv"} <= logged


@pytest.mark.slow
def test_example_own_tests_pass_once_installed(example_installed: None, tmp_path: Path) -> None:
    done = _run("-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE), cwd=tmp_path)
    assert "skipped" not in done.stdout  # installed: the entry-point test runs too
