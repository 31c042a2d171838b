"""Parallel sweep workers start as forks of a server that imported torch/Lightning/MLflow once."""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from collections.abc import Iterator
from multiprocessing import forkserver
from pathlib import Path

import pytest
from joblib import Parallel, delayed
from joblib.externals.loky import get_reusable_executor
from joblib.externals.loky.backend.context import get_start_method, set_start_method
from omegaconf import OmegaConf

from sparseland import worker_start
from sparseland.plugins import PLUGIN_INDEX
from sparseland.tracking.store import open_store
from sparseland.worker_start import (
    PreloadWorkers,
    is_preloaded_joblib_sweep,
    preload_workers,
    start_for_command_line,
)

JOBLIB_SWEEP = ["-m", "seed=range(8)", "hydra/launcher=joblib", "hydra.launcher.n_jobs=4"]
needs_forkserver = pytest.mark.skipif(
    "forkserver" not in multiprocessing.get_all_start_methods(), reason="no fork server here"
)


def modules_at_entry() -> tuple[bool, bool, int]:
    """What a worker holds before it imports anything itself, and its pid."""
    return "lightning.pytorch" in sys.modules, "mlflow" in sys.modules, os.getpid()


def worker_state() -> tuple[int, int, list[str]]:
    """A worker's parent, its objects frozen out of the garbage collector, and the built-in
    plugin modules it has not imported, before it imports anything itself."""
    modules = {f"sparseland.plugins.{m}" for names in PLUGIN_INDEX.values() for m in names.values()}
    return os.getppid(), gc.get_freeze_count(), sorted(modules - set(sys.modules))


def running_server() -> int | None:
    """The pid of this process's fork server, if one runs."""
    return forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]


@pytest.fixture
def loky_default(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    before = get_start_method()
    monkeypatch.setattr(worker_start, "_started_for_command_line", False)
    yield
    get_reusable_executor().shutdown(wait=True)  # workers of one start method only
    set_start_method(before, force=True)
    forkserver._forkserver._stop()  # type: ignore[attr-defined]  # the next test starts its own


@pytest.mark.skipif(sys.platform == "win32", reason="no fork server on Windows")
def test_preloaded_workers_start_with_the_heavy_modules_imported(loky_default: None) -> None:
    get_reusable_executor().shutdown(wait=True)
    preload_workers(("lightning.pytorch", "mlflow"))
    found = Parallel(n_jobs=2, backend="loky")(delayed(modules_at_entry)() for _ in range(4))
    assert all(lightning and mlflow for lightning, mlflow, _ in found)
    assert all(pid != os.getpid() for *_, pid in found)


def test_loky_workers_without_preload_import_everything_themselves(loky_default: None) -> None:
    get_reusable_executor().shutdown(wait=True)
    set_start_method("loky", force=True)
    found = Parallel(n_jobs=2, backend="loky")(delayed(modules_at_entry)() for _ in range(2))
    assert not any(lightning for lightning, _, _ in found)


@pytest.mark.parametrize(
    ("launcher", "preload", "expected"),
    [
        ("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", True, "forkserver"),
        ("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", False, None),
        ("hydra._internal.core_plugins.basic_launcher.BasicLauncher", True, None),
    ],
)
def test_the_sweep_callback_switches_only_the_joblib_launcher(
    launcher: str, preload: bool, expected: str | None, loky_default: None
) -> None:
    set_start_method(None, force=True)
    config = OmegaConf.create(
        {"workers": {"preload": preload}, "hydra": {"launcher": {"_target_": launcher}}}
    )
    PreloadWorkers().on_multirun_start(config)
    assert get_start_method() == expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (JOBLIB_SWEEP, True),
        (["--multirun", "hydra/launcher=joblib"], True),
        (["hydra.mode=MULTIRUN", "hydra/launcher=joblib"], True),
        (["-m", "seed=range(8)"], False),  # the basic launcher: jobs in this process
        (["seed=1", "hydra/launcher=joblib"], False),  # a single run: no sweep, no workers
        ([*JOBLIB_SWEEP, "workers.preload=false"], False),
        ([*JOBLIB_SWEEP, "--cfg", "job"], False),  # prints the config, runs nothing
    ],
)
def test_the_command_line_says_when_to_start_the_server(argv: list[str], expected: bool) -> None:
    assert is_preloaded_joblib_sweep(argv) is expected


@needs_forkserver
def test_a_server_started_from_the_command_line_forks_every_worker(loky_default: None) -> None:
    get_reusable_executor().shutdown(wait=True)
    assert not start_for_command_line(["-m", "seed=range(2)"])
    assert running_server() is None
    assert start_for_command_line(JOBLIB_SWEEP)
    server = running_server()
    assert server is not None  # running before any job is handed out
    found = Parallel(n_jobs=2, backend="loky")(delayed(worker_state)() for _ in range(4))
    assert running_server() == server
    for parent, frozen, missing in found:
        assert parent == server  # a fork of the server, not a fresh interpreter
        assert frozen > 100_000  # torch, Lightning and MLflow's objects, out of the collector
        assert missing == []  # the sweep's config store names every plugin's config class


@needs_forkserver
def test_a_config_file_can_still_turn_the_preload_off(loky_default: None) -> None:
    assert start_for_command_line(JOBLIB_SWEEP)
    config = OmegaConf.create(
        {
            "workers": {"preload": False},
            "hydra": {
                "launcher": {
                    "_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
                }
            },
        }
    )
    PreloadWorkers().on_multirun_start(config)
    assert get_start_method() is None  # loky's fresh interpreters


def test_later_jobs_of_a_worker_reuse_its_tracking_store(tmp_path: Path) -> None:
    """Creating a store (engine, schema check) costs a job; MLflow keeps one per URI."""
    first, second = (f"sqlite:///{tmp_path / name}.db" for name in ("a", "b"))
    store = open_store(first, "e", tmp_path)[0]._tracking_client.store
    assert open_store(first, "e", tmp_path)[0]._tracking_client.store is store
    assert open_store(second, "e", tmp_path)[0]._tracking_client.store is not store
