"""Task ``classify``: a classifier's own predictions, or a linear classifier on a model's codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import store

from sparseland.errors import ConfigError
from sparseland.interfaces import SparselandModule
from sparseland.registry import get, make_config
from sparseland.runner import run


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """Small tensors: one thread is much faster than two on a shared, busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class PixelEncoder(SparselandModule):
    """An encoder whose codes are the pixels: classify must then match a reference fit on them."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


def digits() -> Any:
    dm = get("dataset", "digits").cls(make_config("dataset", "digits"), None)
    dm.setup("fit")
    return dm


def test_linear_classifier_on_codes_matches_scikit_learn_on_the_same_features() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    dm = digits()
    task = get("task", "classify").cls(make_config("task", "classify"))
    metrics = task.run(PixelEncoder(None, None), dm, tracker=None)  # type: ignore[arg-type]
    train, test = dm.splits["train"], dm.splits["test"]
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    reference.fit(train.x.reshape(len(train), -1).numpy(), train.y.numpy())
    expected = reference.score(test.x.reshape(len(test), -1).numpy(), test.y.numpy())
    assert metrics["test/accuracy"] == pytest.approx(expected)
    assert metrics["test/accuracy_pixels"] == pytest.approx(expected)
    assert metrics["test/accuracy"] > 0.9 and metrics["test/n_features"] == 64


def test_classify_hook_is_scored_directly() -> None:
    class Oracle(SparselandModule):
        def classify(self, x: torch.Tensor) -> torch.Tensor:
            return torch.zeros(x.shape[0], dtype=torch.long)

    dm = digits()
    task = get("task", "classify").cls(make_config("task", "classify", pixels_baseline=False))
    metrics = task.run(Oracle(None, None), dm, tracker=None)  # type: ignore[arg-type]
    zeros = float(np.mean(dm.splits["test"].y.numpy() == 0))
    assert metrics == {"test/accuracy": pytest.approx(zeros)}


def test_classify_refuses_a_dataset_without_labels(make_config: Any) -> None:
    from sparseland.spec import validate

    # the refusal names the missing capability and the datasets that provide it
    with pytest.raises(ConfigError, match=r"needs Labelled .*dataset 'patches'.*digits, mnist"):
        validate(make_config("task=classify", "model=psd"))


@pytest.mark.slow
def test_cnn_classifies_digits_end_to_end(make_config: Any, outputs: Path, tmp_path: Path) -> None:
    cfg = make_config(
        "model=cnn",
        "dataset=digits",
        "task=classify",
        "preprocess=none",
        "model.lr=0.01",
        "dataset.batch_size=64",
        "trainer.max_epochs=4",
        "trainer.val_check_interval=1.0",
        "logger.experiment=classify",
        small=False,
    )
    cfg.trainer.enable_progress_bar = False
    cfg.trainer.accelerator = "cpu"
    metrics = run(cfg, run_dir=tmp_path / "run")
    assert metrics["test/accuracy"] > 0.9
    client = store(outputs)
    (found,) = client.search_runs([client.get_experiment_by_name("classify").experiment_id])
    assert found.data.metrics["test/accuracy"] == pytest.approx(metrics["test/accuracy"])
    assert len(client.get_metric_history(found.info.run_id, "train/loss")) >= 3
    assert "atoms.png" in {a.path for a in client.list_artifacts(found.info.run_id)}
