"""A dictionary learner's update as a ``torch.optim.Optimizer`` step on the dictionary.

Lightning counts training steps by optimizer steps; wrapping the learner this way makes
``global_step``, step-based checkpoints and logging behave as for any other model, while the
update itself is the learner's closed-form one (no gradient, no learning rate).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from sparseland.interfaces.learner import DictionaryLearner


class LearnerOptimizer(torch.optim.Optimizer):
    def __init__(
        self,
        dictionary: torch.nn.Parameter,
        learner: DictionaryLearner,
        state: Callable[[], dict[str, torch.Tensor]],
    ) -> None:
        super().__init__([dictionary], defaults={})
        self.learner = learner
        self._state = state
        self.statistics: dict[str, torch.Tensor] | None = None

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = closure() if closure is not None else None
        if self.statistics is None:
            raise RuntimeError("LearnerOptimizer.step() before its statistics were set")
        dictionary = self.param_groups[0]["params"][0]
        self.learner.update(dictionary.data, self._state(), self.statistics)
        self.statistics = None
        return loss
