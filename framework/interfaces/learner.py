"""DictionaryLearner: update a dictionary from signals and their codes.

A learner works from sufficient statistics of a batch (e.g. A = Σ h hᵀ and B = Σ x hᵀ for
block-coordinate descent). The model all-reduces them across processes before
:meth:`update`, which is how dictionary learning scales under Lightning DDP: every process
applies the same update to the same dictionary. Statistics are summed across processes,
except those whose name starts with ``gather_``, which are concatenated along dim 0.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import torch

from sparseland.interfaces.plugin import Plugin

#: Named tensors: a learner's running state, and the statistics of a batch.
Tensors = dict[str, torch.Tensor]


class DictionaryLearner(Plugin[Any]):
    #: Batch learners (True) step once per epoch: the model merges the statistics of every
    #: batch of the epoch with :meth:`merge_statistics` and updates on the last one.
    accumulate_epoch: ClassVar[bool] = False

    def merge_statistics(self, total: Tensors | None, new: Tensors) -> Tensors:
        """``total`` (None on the epoch's first batch) plus this batch's statistics ``new``."""
        raise NotImplementedError(f"{type(self).__name__} does not accumulate over an epoch")

    def init_state(self, dictionary: torch.Tensor) -> Tensors:
        """Running state kept between updates (checkpointed with the model)."""
        return {}

    @abstractmethod
    def statistics(self, x: torch.Tensor, codes: torch.Tensor, dictionary: torch.Tensor) -> Tensors:
        """Sums over this process's batch (signals are rows of ``x``, codes rows of ``codes``)."""

    @abstractmethod
    def update(self, dictionary: torch.Tensor, state: Tensors, stats: Tensors) -> None:
        """Update ``dictionary`` (m × k, atoms as columns) and ``state`` in place.

        Must leave every atom with unit norm and replace atoms that are no longer used.
        """
