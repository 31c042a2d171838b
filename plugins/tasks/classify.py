"""Task ``classify``: test accuracy of a classifier, or of a linear classifier on a model's codes.

A model with a ``classify(x) -> labels`` hook (a CNN) is scored directly. Otherwise the
model is an encoder (PSD, LISTA, a dictionary with its pursuit): a multinomial logistic
regression is fitted on the codes of the training split and scored on the test split, as in
the feature-learning experiments of the sparse coding literature (e.g. Raina et al. 2007,
self-taught learning). ``pixels_baseline`` also scores the same classifier on the raw
pixels, the comparison those experiments report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sparseland import PluginConfig, option, register_task
from sparseland.errors import ConfigError, check
from sparseland.interfaces import SparselandDataModule, SparselandModule, Task
from sparseland.interfaces.contracts import Classifier, Labelled
from sparseland.metrics import MetricSpec


@dataclass
class ClassifyConfig(PluginConfig):
    C: float = option(1.0, "inverse ℓ2 regularisation of the logistic regression")
    max_iter: int = option(2000, "iterations of the logistic regression solver")
    standardize: bool = option(True, "features to zero mean, unit variance before the regression")
    pixels_baseline: bool = option(True, "also score the same classifier on the raw pixels")

    def __post_init__(self) -> None:
        check(self.C > 0, "C", f"must be > 0, got {self.C}")
        check(self.max_iter >= 1, "max_iter", f"must be >= 1, got {self.max_iter}")


def _collect(model: SparselandModule, loader: Any, encode: bool) -> tuple[np.ndarray, ...]:
    feats, pixels, labels = [], [], []
    for batch in loader:
        x = batch["x"].to(model.device)
        if encode:
            feats.append(model.encode(x).reshape(x.shape[0], -1).float().cpu())
        pixels.append(batch.get("raw", batch["x"]).reshape(x.shape[0], -1).float().cpu())
        labels.append(batch["y"].cpu())
    f = torch.cat(feats).numpy() if feats else np.zeros((0, 0))
    return f, torch.cat(pixels).numpy(), torch.cat(labels).numpy()


def linear_accuracy(
    train: np.ndarray,
    y_train: np.ndarray,
    test: np.ndarray,
    y_test: np.ndarray,
    config: ClassifyConfig,
) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    steps: list[Any] = [StandardScaler()] if config.standardize else []
    clf = make_pipeline(*steps, LogisticRegression(C=config.C, max_iter=config.max_iter))
    clf.fit(train, y_train)
    return float(clf.score(test, y_test))


# the task contract (declared metrics, needed capabilities, run), alike in every task
@register_task("classify", config=ClassifyConfig)
class Classify(Task):
    declares = (
        MetricSpec("test/accuracy", "labels", "higher"),
        MetricSpec("test/accuracy_pixels", "labels", "higher"),
        MetricSpec("test/n_features", "codes", "neither"),
        MetricSpec("test/code_l0", "codes", "neither", "non-zeros"),
    )
    needs_data = (Labelled,)

    def run(
        self, model: SparselandModule, datamodule: SparselandDataModule, tracker: Any
    ) -> dict[str, float]:
        if not datamodule.has_labels:
            raise ConfigError(
                "task", "classify needs a labelled dataset", "use dataset=digits or mnist"
            )
        out: dict[str, float] = {}
        if isinstance(model, Classifier):
            correct, total = 0, 0
            for batch in datamodule.test_dataloader():
                predicted = model.classify(batch["x"].to(model.device)).cpu()
                correct += int((predicted == batch["y"]).sum())
                total += int(batch["y"].shape[0])
            out["test/accuracy"] = correct / max(total, 1)
        else:
            try:
                train, _, y_train = _collect(model, datamodule.train_dataloader(), True)
                test, _, y_test = _collect(model, datamodule.test_dataloader(), True)
            except NotImplementedError as exc:
                raise ConfigError(
                    "task",
                    f"classify needs a classify() hook or an encoder: {exc}",
                    "use model=cnn, psd, lista or dictionary",
                ) from None
            out["test/accuracy"] = linear_accuracy(train, y_train, test, y_test, self.config)
            out["test/n_features"] = float(train.shape[1])
            out["test/code_l0"] = float((np.abs(test) > 0).sum(axis=1).mean())
        if self.config.pixels_baseline:
            _, train_pixels, y_train = _collect(model, datamodule.train_dataloader(), False)
            _, test_pixels, y_test = _collect(model, datamodule.test_dataloader(), False)
            out["test/accuracy_pixels"] = linear_accuracy(
                train_pixels, y_train, test_pixels, y_test, self.config
            )
        return out
