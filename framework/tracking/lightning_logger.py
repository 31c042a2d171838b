"""A Lightning logger that writes into the run the job already opened (no second run)."""

from __future__ import annotations

from argparse import Namespace
from typing import Any

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from sparseland.tracking.run import Tracker


class TrackerLogger(Logger):
    def __init__(self, tracker: Tracker | None) -> None:
        super().__init__()
        self.tracker = tracker

    @property
    def name(self) -> str:
        return "sparseland"

    @property
    def version(self) -> str:
        return self.tracker.run_id if self.tracker else "offline"

    @rank_zero_only
    def log_hyperparams(
        self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any
    ) -> None:
        """The runner logs the whole flattened config itself."""

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.tracker is not None:
            metrics = {k: v for k, v in metrics.items() if k != "epoch"}
            self.tracker.log_metrics(metrics, step=step or 0)
