"""A Lightning callback that stops a diverging run with the reason (every model gets it)."""

from __future__ import annotations

import math
from typing import Any

import lightning as L

from sparseland.errors import NonFiniteError


class DivergenceGuard(L.Callback):
    """Raise NonFiniteError as soon as a logged training metric is NaN or infinite."""

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        for key, value in trainer.callback_metrics.items():
            if key.startswith("train/") and not math.isfinite(float(value)):
                raise NonFiniteError(
                    f"{key} became {float(value)} at step {trainer.global_step}: the run diverged. "
                    "Lower the step size or learning rate, or check the data for NaNs."
                )
