"""Tasks turn a trained model into metrics (``test/*``) and artifacts."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from sparseland.interfaces.dataset import SparselandDataModule
from sparseland.interfaces.model import SparselandModule
from sparseland.interfaces.plugin import Plugin


class Task(Plugin[Any]):
    #: Checked before training: a task that needs labels refuses a dataset without them.
    needs_labels: bool = False

    @abstractmethod
    def run(
        self, model: SparselandModule, datamodule: SparselandDataModule, tracker: Any
    ) -> dict[str, float]:
        """Evaluate ``model``; log artifacts through ``tracker``; return ``test/*`` metrics."""
