"""Real runs through MLflow: metrics in the space they declare, and unconverged results flagged.

* ``reconstruct`` with ``preprocess=zca`` and ``preprocess=dc`` on the same data: error and PSNR
  are both in pixels, so they rank the two alike; the comparison shows each metric's direction.
* a run whose pursuit stops far from its tolerance is tagged ``sparseland.unconverged`` and
  marked in the comparison, says so once on the console, and a converged run is not.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import pytest
from conftest import store

from sparseland import registry
from sparseland.compare import cli
from sparseland.convergence import UNCONVERGED_TAG
from sparseland.metrics import declarations
from sparseland.runner import run

TINY = [
    "dataset.n_train=256",
    "dataset.n_val=64",
    "dataset.n_test=128",
    "model.n_atoms=16",
    "trainer.max_epochs=1",
    "logger.log_model=false",
]


def _runs(outputs: Path, experiment: str) -> dict[str, object]:
    client = store(outputs)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    return {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}


def test_every_shipped_task_declares_each_of_its_metrics_once() -> None:
    tasks = [e for e in registry.entries("task") if e.module.startswith("sparseland.plugins")]
    assert {e.name for e in tasks} >= {"reconstruct", "denoise", "classify", "recover"}
    for entry in tasks:
        names = [spec.name for spec in entry.cls.declares]
        assert names and len(names) == len(set(names)), entry.name
        assert all(n.startswith("test/") for n in names), entry.name


@pytest.mark.slow
def test_error_and_psnr_live_in_pixels_and_agree_across_preprocessors(
    make_config, outputs: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    common = [*TINY, "logger.experiment=spaces", "pursuit.max_iter=1000", "pursuit.tol=1e-4"]
    with caplog.at_level(logging.WARNING):
        for pre in ("zca", "dc"):
            run(make_config(*common, f"preprocess={pre}", f"logger.run_name={pre}"))
    assert not [r for r in caplog.records if "undeclared" in r.getMessage()]
    runs = _runs(outputs, "spaces")
    metrics = {name: r.data.metrics for name, r in runs.items()}  # type: ignore[attr-defined]
    for name, r in runs.items():
        specs = declarations(r.data.tags)  # type: ignore[attr-defined]
        assert specs["test/mse"].space == specs["test/psnr"].space == "pixels", name
        assert specs["test/mse_preprocessed"].space == "preprocessed"
        # both from the same pixels: PSNR = 10 log10(1 / MSE) for data in [0, 1]
        m = metrics[name]
        assert m["test/psnr"] == pytest.approx(-10 * math.log10(m["test/mse"]), rel=1e-9)
    # the whitened space is not the pixels': there the two errors differ
    assert metrics["zca"]["test/mse_preprocessed"] != pytest.approx(metrics["zca"]["test/mse"])
    better_by_mse = min(metrics, key=lambda n: metrics[n]["test/mse"])
    better_by_psnr = max(metrics, key=lambda n: metrics[n]["test/psnr"])
    assert better_by_mse == better_by_psnr

    result = cli.run_compare(
        store(outputs), experiment="spaces", out=tmp_path / "cmp", log_artifacts=False
    )
    md = (tmp_path / "cmp" / "table.md").read_text()
    head = next(line for line in md.splitlines() if line.startswith("| preprocess.name"))
    assert "test/mse ↓" in head and "test/psnr ↑" in head and "test/l0 ·" in head
    best = next(line for line in md.splitlines() if line.startswith(f"| {better_by_psnr} |"))
    assert best.count("**") >= 4  # best in both mse and psnr
    assert result.comparison.specs["test/psnr"].unit == "dB"


@pytest.mark.slow
def test_unconverged_run_is_tagged_marked_and_reported_once(
    make_config, outputs: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    common = [*TINY, "logger.experiment=conv", "preprocess=dc"]
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        returned = run(make_config(*common, "pursuit.max_iter=2", "logger.run_name=stopped"))
    reports = [r for r in caplog.records if "pursuit not converged" in r.getMessage()]
    assert len(reports) == 1  # once per run, not per validation batch
    assert "the final evaluation" in reports[0].getMessage()
    assert not [w for w in caught if w.category.__name__ == "ConvergenceWarning"]

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        run(make_config(*common, "pursuit.max_iter=5000", "pursuit.tol=1e-3", "logger.run_name=ok"))
    assert not [r for r in caplog.records if "pursuit not converged" in r.getMessage()]

    runs = _runs(outputs, "conv")
    stopped, ok = runs["stopped"].data, runs["ok"].data  # type: ignore[attr-defined]
    assert stopped.tags[UNCONVERGED_TAG] == "true"
    assert stopped.metrics["pursuit/converged_fraction"] < 0.9  # zero codes are optimal at once
    # the run's value is the final evaluation's, not a training step's
    assert stopped.metrics["pursuit/converged_fraction"] == returned["pursuit/converged_fraction"]
    assert stopped.metrics["pursuit/max_gap"] > 1e-3
    assert UNCONVERGED_TAG not in ok.tags
    assert ok.metrics["pursuit/converged_fraction"] == 1.0

    cli.run_compare(store(outputs), experiment="conv", out=tmp_path / "cmp", log_artifacts=False)
    lines = (tmp_path / "cmp" / "table.md").read_text().splitlines()
    flagged = [line for line in lines if line.startswith("| ") and "unconverged 1/1" in line]
    assert len(flagged) == 1 and "| 2 |" in flagged[0]  # the max_iter=2 row
    assert any(line.startswith("| 5000 |") and "unconverged" not in line for line in lines)
