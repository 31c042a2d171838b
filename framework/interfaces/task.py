"""Tasks turn a trained model into metrics (``test/*``) and artifacts."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from sparseland.interfaces.dataset import SparselandDataModule
from sparseland.interfaces.model import SparselandModule
from sparseland.interfaces.plugin import Plugin
from sparseland.metrics import MetricSpec


class Task(Plugin[Any]):
    """A task states the capabilities (sparseland.interfaces.contracts) it needs of the model
    and of the datamodule; the run's validation refuses a combination that lacks one."""

    #: Capabilities the model must provide, e.g. ``(Denoiser,)``.
    needs_model: ClassVar[tuple[type, ...]] = ()
    #: Capabilities the datamodule must provide, e.g. ``(NoisyImage,)`` or ``(Labelled,)``.
    needs_data: ClassVar[tuple[type, ...]] = ()

    #: Every metric :meth:`run` may return, declared once (space, direction, unit); the run
    #: stores the declarations with its metrics so that comparisons compare like with like.
    declares: ClassVar[tuple[MetricSpec, ...]] = ()

    @abstractmethod
    def run(
        self, model: SparselandModule, datamodule: SparselandDataModule, tracker: Any
    ) -> dict[str, float]:
        """Evaluate ``model``; log artifacts through ``tracker``; return ``test/*`` metrics."""
