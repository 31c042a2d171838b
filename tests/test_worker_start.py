"""Parallel sweep workers start as forks of a server that imported torch/Lightning/MLflow once."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from joblib import Parallel, delayed
from joblib.externals.loky import get_reusable_executor
from joblib.externals.loky.backend.context import get_start_method, set_start_method
from omegaconf import OmegaConf

from sparseland.worker_start import PreloadWorkers, chosen_plugin_modules, preload_workers


def modules_at_entry() -> tuple[bool, bool, int]:
    """What a worker holds before it imports anything itself, and its pid."""
    return "lightning.pytorch" in sys.modules, "mlflow" in sys.modules, os.getpid()


@pytest.fixture
def loky_default() -> Iterator[None]:
    before = get_start_method()
    yield
    get_reusable_executor().shutdown(wait=True)  # workers of one start method only
    set_start_method(before, force=True)


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


def test_the_chosen_built_in_plugins_are_preloaded_too() -> None:
    config = OmegaConf.create(
        {"hydra": {"runtime": {"choices": {"pursuit": "omp", "learner": "ksvd", "paths": "x"}}}}
    )
    assert sorted(chosen_plugin_modules(config)) == [
        "sparseland.plugins.dictionary.ksvd",
        "sparseland.plugins.pursuit.omp",
    ]
