"""The preset example_sinusoids composes with the example's three plugins, shrinks itself with
${sl.quick:full,small}, and runs end to end."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from sparseland.app import config_dir, prepare
from sparseland.runner import run
from sparseland.spec import validate

prepare()  # the plugins' presets and the sl.quick resolver, as the app publishes them


def _compose(*overrides: str) -> DictConfig:
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose("config", overrides=["experiment=example_sinusoids", *overrides])


def test_full_and_quick_sizes() -> None:
    full, quick = _compose(), _compose("quick=true")
    assert (full.dataset.n_train, full.model.n_atoms, full.trainer.max_epochs) == (20000, 64, 20)
    assert (quick.dataset.n_train, quick.model.n_atoms, quick.trainer.max_epochs) == (512, 32, 1)
    spec = validate(quick)  # every plugin config of the preset is valid
    assert (spec["dataset"].name, spec["preprocess"].name, spec["pursuit"].name) == (
        "example_sinusoids",
        "example_standardize",
        "example_iht",
    )


def test_quick_run_codes_the_test_signals(tmp_path: Path) -> None:
    cfg = _compose(
        "quick=true", "dataset.n_train=256", "trainer.enable_progress_bar=false",
        "trainer.accelerator=cpu", "logger.log_model=false", f"paths.outputs={tmp_path}",
    )  # fmt: skip
    metrics = run(cfg, run_dir=tmp_path / "run")
    assert metrics["test/l0"] <= 3 + 1e-9  # example_iht keeps at most n_nonzero = 3 atoms
    assert metrics["test/psnr"] > 0
