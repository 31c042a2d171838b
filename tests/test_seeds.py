"""One seed drives every draw: a sweep over ``seed=0,1`` changes the data of every dataset
plugin, and the same seed gives the same metrics again (read back from MLflow)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import run_app, store
from model_runs import image_file
from test_neural_datasets import fake_mnist

from sparseland import registry

TIMING = re.compile(r"time|_per_s|throughput")
CPU = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu"]

# One tiny preset per dataset plugin: `+case=<dataset>` selects it in the sweep. Each case:
# (config-group choices, None to drop a group; values). "{tmp}" is the test's folder.
SMALL_DICTIONARY = {"model": {"n_atoms": 16}}
CASES: dict[str, tuple[dict[str, str | None], dict[str, dict[str, object]]]] = {
    "patches": (
        {"task": "reconstruct"},
        {"dataset": {"n_train": 256, "n_val": 32, "n_test": 64, "batch_size": 128}},
    ),
    "streaming_patches": (
        {"task": "reconstruct"},
        {"dataset": {"n_train": 256, "n_fit": 128, "n_val": 32, "n_test": 64, "batch_size": 128}},
    ),
    "synthetic": (
        {"task": "recover", "preprocess": "none"},
        {"dataset": {"n_train": 256, "n_val": 32, "n_test": 64, "batch_size": 128}},
    ),
    "digits": (
        {"task": "reconstruct", "preprocess": "dc"},
        {"dataset": {"flatten": "true", "batch_size": 512}},
    ),
    "mnist": (
        {"task": "reconstruct", "preprocess": "dc"},
        {"dataset": {"flatten": "true", "root": "{tmp}/mnist", "val_fraction": 0.2}},
    ),
    "images": (
        {"task": "denoise", "preprocess": "none"},
        {"dataset": {"image": "{tmp}/clean.png", "n_train": 256, "n_val": 32, "batch_size": 128}},
    ),
    "image_crops": (
        {
            "task": "reconstruct",
            "model": "csc",
            "pursuit": "csc_admm",
            "learner": None,
            "preprocess": "none",
        },
        {
            "dataset": {
                "train_images": "[coins]",
                "test_images": "[{tmp}/clean.png]",
                "crop_size": 8,
                "n_train": 64,
                "n_val": 16,
                "n_test": 16,
                "batch_size": 32,
            },
            "model": {"n_filters": 4},
            "pursuit": {"max_iter": 10},
        },
    ),
}


def write_cases(folder: Path, tmp: Path) -> None:
    """``folder/case/<name>.yaml``: each a ``# @package _global_`` preset choosing its dataset."""
    cases = folder / "case"
    cases.mkdir(parents=True)
    for name, (groups, values) in CASES.items():
        lines = ["# @package _global_", "defaults:", f"  - override /dataset: {name}"]
        lines += [f"  - override /{g}: {'null' if c is None else c}" for g, c in groups.items()]
        for group, fields in {**SMALL_DICTIONARY, **values}.items():
            lines.append(f"{group}:")
            lines += [f"  {k}: {str(v).replace('{tmp}', str(tmp))}" for k, v in fields.items()]
        lines.append(f"label: {name}")
        (cases / f"{name}.yaml").write_text("\n".join(lines) + "\n")


def metrics_by_case(outputs: Path, experiment: str) -> dict[tuple[str, str], dict[str, float]]:
    client = store(outputs)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    runs = client.search_runs([found.experiment_id], "attributes.status = 'FINISHED'")
    table: dict[tuple[str, str], dict[str, float]] = {}
    for run in runs:
        if run.data.tags.get("sparseland.kind") in ("sweep", "reused"):
            continue
        key = (run.data.params["label"], run.data.params["seed"])
        assert run.data.params["dataset.seed"] == run.data.params["seed"]
        table.setdefault(key, run.data.metrics)
    return table


@pytest.mark.slow
def test_seed_reaches_every_dataset_and_repeats(tmp_path: Path) -> None:
    assert set(CASES) == set(registry.names("dataset")), "every dataset plugin has a case"
    (tmp_path / "mnist").mkdir()
    fake_mnist(tmp_path / "mnist", gz=False)
    image_file(tmp_path)
    write_cases(tmp_path / "conf", tmp_path)
    outputs = tmp_path / "outputs"
    config_dir = ["--config-dir", str(tmp_path / "conf")]  # options before the overrides
    common = [f"+case={','.join(CASES)}", f"paths.outputs={outputs}", "logger.log_model=false"]
    first = run_app(*config_dir, "-m", *common, "seed=0,1", "logger.experiment=seeds", *CPU,
                    cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr[-4000:]
    again = run_app(*config_dir, "-m", *common, "seed=0", "logger.experiment=again", *CPU,
                    cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr[-4000:]

    swept, repeated = metrics_by_case(outputs, "seeds"), metrics_by_case(outputs, "again")
    assert {k for k, _ in swept} == set(CASES), first.stderr[-4000:]
    for name in CASES:
        zero, one, rerun = swept[(name, "0")], swept[(name, "1")], repeated[(name, "0")]
        tests = [m for m in sorted(zero) if m.startswith("test/") and not TIMING.search(m)]
        assert tests, name
        # a different seed draws different data: the data-dependent metrics move
        assert any(not np.isclose(zero[m], one[m], rtol=1e-9, atol=0) for m in tests), name
        # the same seed draws the same data and the same run: identical metrics
        for m in tests:
            assert rerun[m] == pytest.approx(zero[m], rel=1e-6, abs=1e-9), (name, m)


def test_every_seed_field_follows_the_run_seed_unless_pinned(make_config: Any) -> None:
    cfg = make_config("seed=3", "model=lista", "dataset=synthetic")
    assert (cfg.dataset.seed, cfg.model.seed) == (3, 3)
    pinned = make_config("seed=3", "model=lista", "dataset=synthetic", "dataset.seed=7")
    assert (pinned.dataset.seed, pinned.model.seed) == (7, 3)
    # outside the app, the Python API keeps the config's own default
    assert registry.make_config("dataset", "digits").seed == 0
