"""A dictionary learner's update as a ``torch.optim.Optimizer`` step on the dictionary.

Lightning counts training steps by optimizer steps; wrapping the learner this way makes
``global_step``, step-based checkpoints and logging behave as for any other model, while the
update itself is the learner's closed-form one (no gradient, no learning rate). The model
hands the (all-reduced) statistics of the step to ``step`` through its closure:
``optimizer.step(closure=lambda: statistics)``.
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

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One learner update with the statistics that ``closure()`` returns."""
        statistics = closure() if closure is not None else None
        if not isinstance(statistics, dict):
            raise RuntimeError(
                "LearnerOptimizer.step() needs the step's statistics: "
                "call optimizer.step(closure=lambda: statistics)"
            )
        dictionary = self.param_groups[0]["params"][0]
        self.learner.update(dictionary.data, self._state(), statistics)
        return None
