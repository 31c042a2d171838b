"""Task ``recover``: how many ground-truth atoms the learned dictionary found.

An atom d* of the true dictionary counts as found when some learned atom d̂ has
1 − |d*ᵀ d̂| < ``threshold`` (0.01 in Aharon, Elad and Bruckstein 2006, §V-A). Needs a dataset
that exposes ``true_dictionary`` (m × k, e.g. ``synthetic``) and signals in the same space as
the learned atoms (preprocess=none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from sparseland import PluginConfig, metrics, option, register_task
from sparseland.errors import ConfigError, check
from sparseland.interfaces import SparselandDataModule, SparselandModule, Task
from sparseland.interfaces.contracts import GroundTruthDictionary, WithDictionary
from sparseland.metrics import MetricSpec


@dataclass
class RecoverConfig(PluginConfig):
    threshold: float = option(
        0.01, "a true atom d* is recovered when 1 − |d*ᵀd̂| is below this for some learned d̂"
    )

    def __post_init__(self) -> None:
        check(0 < self.threshold < 1, "threshold", f"must be in (0, 1), got {self.threshold}")


def recovery_rate(true: torch.Tensor, learned: torch.Tensor, threshold: float = 0.01) -> float:
    """Fraction of the columns of ``true`` matched by a column of ``learned`` (both m × k)."""
    t = true.double() / true.double().norm(dim=0, keepdim=True).clamp_min(1e-12)
    d = learned.double() / learned.double().norm(dim=0, keepdim=True).clamp_min(1e-12)
    best = (t.T @ d).abs().amax(dim=1)
    return float((1.0 - best < threshold).double().mean())


# the task contract (declared metrics, needed capabilities, run), alike in every task
@register_task("recover", config=RecoverConfig)
class Recover(Task):
    declares = (
        MetricSpec("test/recovery_rate", "dictionary", "higher"),
        MetricSpec("test/coherence", "dictionary", "lower"),
        MetricSpec("test/objective", "preprocessed", "lower"),
    )
    needs_model = (WithDictionary,)
    needs_data = (GroundTruthDictionary,)

    def run(
        self, model: SparselandModule, datamodule: SparselandDataModule, tracker: Any
    ) -> dict[str, float]:
        if not isinstance(datamodule, GroundTruthDictionary):
            raise ConfigError(
                "dataset",
                f"task=recover needs a ground-truth dictionary and "
                f"'{datamodule.config.name}' has none",
                "use dataset=synthetic",
            )
        true = datamodule.true_dictionary
        learned = model.D if isinstance(model, WithDictionary) else None
        if learned is None or learned.shape[0] != true.shape[0]:
            raise ConfigError(
                "model",
                "task=recover needs a model with a matrix dictionary D "
                f"of {true.shape[0]}-dimensional atoms",
                "use model=dictionary",
            )
        out = {
            "test/recovery_rate": recovery_rate(true, learned.cpu(), self.config.threshold),
            "test/coherence": metrics.mutual_coherence(learned),
        }
        objectives = [
            model.objective(b["x"].to(model.device), model.encode(b["x"].to(model.device)))
            for b in datamodule.test_dataloader()
        ]
        out["test/objective"] = float(torch.cat(objectives).mean())
        return out
