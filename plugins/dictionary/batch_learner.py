"""Base of the batch learners (bcd, mod, ksvd): one dictionary update per pass over the data.

A batch learner sets ``accumulate_epoch = True``. The model then adds up the statistics of
every training batch of the epoch with :meth:`merge_statistics` (sums add; ``gather_*``
tensors are concatenated), all-reduces them across DDP processes once, and steps the
LearnerOptimizer on the last batch. The codes of the whole epoch are therefore computed
with one dictionary, which is what makes the alternating minimisation monotone.
"""

from __future__ import annotations

import torch

from sparseland.interfaces import DictionaryLearner
from sparseland.plugins.dictionary.atom_updates import keep_worst


class BatchLearner(DictionaryLearner):
    accumulate_epoch = True

    def merge_statistics(
        self, total: dict[str, torch.Tensor] | None, new: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Add ``new`` (one batch) into ``total`` (the epoch so far); returns the merged dict."""
        if total is None:
            merged = dict(new)
        else:
            merged = {}
            for key, value in new.items():
                if key.startswith("gather_"):
                    merged[key] = torch.cat([total[key], value])
                else:
                    merged[key] = total[key] + value
        keep_worst(merged)  # only the replacement candidates are trimmed
        return merged
