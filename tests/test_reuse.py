"""A finished sweep job is reused only when its config and its code are unchanged.

A throw-away plugin package (a pursuit) is written into a temporary folder with the metadata
of an installed distribution, so the real entry-point discovery finds it; a sweep with it runs,
an identical sweep reuses every job (listed under the new parent and in the comparison), and a
sweep after the plugin's source was edited runs again and says why.
"""

from __future__ import annotations

import csv
import importlib.metadata
import os
import re
from pathlib import Path

import pytest
from conftest import TINY, run_app, store

from sparseland.compare.cli import main as compare_main

PACKAGE = "sparseland_throwaway"
PURSUIT = '''"""Pursuit ``throwaway_ista``: ISTA under another name ({version})."""

from dataclasses import dataclass

from sparseland import register_pursuit
from sparseland.plugins.pursuit.ista import Ista, IstaConfig


@dataclass
class ThrowawayConfig(IstaConfig):
    pass


@register_pursuit("throwaway_ista", config=ThrowawayConfig)
class ThrowawayIsta(Ista):
    pass
'''


def write_package(site: Path, version: str) -> Path:
    """The package and its ``.dist-info`` (name, version, entry point), as pip would leave them."""
    package = site / PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "pursuit.py").write_text(PURSUIT.format(version=version))
    info = site / f"{PACKAGE}-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sparseland-throwaway\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(f"[sparseland.plugins]\nthrowaway = {PACKAGE}\n")
    return package / "pursuit.py"


def sweep(tmp_path: Path, outputs: Path, site: Path) -> tuple[str, str]:
    """Run the sweep; return its parent run id and its console output."""
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = run_app(
        "-m", "pursuit=throwaway_ista", "pursuit.lam=0.1,0.2", "logger.experiment=reuse",
        f"paths.outputs={outputs}", *TINY,
        cwd=tmp_path, env={"PYTHONPATH": path},
    )  # fmt: skip
    console = done.stdout + done.stderr
    assert done.returncode == 0, console[-4000:]
    (parent,) = re.findall(r"sweep started: parent run (\w+)", console)
    assert f"sweep finished: parent run {parent}" in console
    return parent, console


def children(outputs: Path, parent: str) -> list:
    client = store(outputs)
    experiment = client.get_experiment_by_name("reuse")
    return client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'")


@pytest.mark.slow
def test_sweep_reuses_unchanged_jobs_and_reruns_edited_code(tmp_path: Path) -> None:
    site, outputs = tmp_path / "site", tmp_path / "outputs"
    source = write_package(site, "first")

    first, console = sweep(tmp_path, outputs, site)
    ran = {r.data.params["pursuit.lam"]: r for r in children(outputs, first)}
    assert sorted(ran) == ["0.1", "0.2"]
    assert all(r.data.tags.get("sparseland.kind") != "reused" for r in ran.values())
    assert all(r.info.status == "FINISHED" for r in ran.values())
    assert "reusing" not in console
    # the sweep names its parent and the comparison command at start and end
    assert console.count(f"sparseland-compare --parent {first}") == 2

    # Nothing changed: every job is reused, and still listed under the new parent.
    second, console = sweep(tmp_path, outputs, site)
    reused = {r.data.params["pursuit.lam"]: r for r in children(outputs, second)}
    assert sorted(reused) == ["0.1", "0.2"]
    for lam, run in reused.items():
        original = ran[lam].info.run_id
        assert run.data.tags["sparseland.kind"] == "reused"
        assert run.data.tags["sparseland.reused_from"] == original
        assert run.data.metrics["test/psnr"] == ran[lam].data.metrics["test/psnr"]
        assert f"reusing run {original}: same config and code" in console
    out = tmp_path / "compare"
    compare_main(["--parent", second, "--tracking-uri", f"sqlite:///{outputs / 'mlflow.db'}",
                  "--out", str(out), "--no-log"])  # fmt: skip
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert sorted(r["pursuit.lam"] for r in rows) == ["0.1", "0.2"]
    assert all(r["reused"] == "1" for r in rows)
    assert "1 (1 reused)" in (out / "table.md").read_text()

    # The plugin's source changed: both jobs run again, and the log names the module.
    write_package(site, "second")
    assert "second" in source.read_text()
    third, console = sweep(tmp_path, outputs, site)
    rerun = children(outputs, third)
    assert len(rerun) == 2
    assert all(r.data.tags.get("sparseland.kind") != "reused" for r in rerun)
    assert all(r.info.status == "FINISHED" for r in rerun)
    assert "reusing" not in console
    for run in ran.values():
        assert f"code changed since run {run.info.run_id}: {PACKAGE}.pursuit" in console


def test_changes_name_the_module_first_and_an_unrecorded_version() -> None:
    from sparseland.tracking.code_version import CodeVersion

    old = CodeVersion({"sparseland": "1 git a", "package p": "1 x", "module p.m": "h1"})
    new = CodeVersion({"sparseland": "1 git b", "package p": "1 y", "module p.m": "h2"})
    assert new.digest != old.digest
    assert new.changes_since(old.tags()) == ["p.m", "p", "sparseland"]
    assert new.changes_since(new.tags()) == []
    assert new.changes_since({}) == ["its code version was not recorded"]


def test_code_version_covers_every_plugin_the_job_uses() -> None:
    from sparseland.tracking.code_version import code_version

    code = code_version([("pursuit", "fista"), ("dataset", "patches")])
    assert set(code.components) == {
        "sparseland",
        "package sparseland.plugins",
        "module sparseland.plugins.pursuit.fista",
        "module sparseland.plugins.datasets.patches",
    }
    version = importlib.metadata.version("sparseland")
    assert code.components["package sparseland.plugins"].startswith(version + " ")
