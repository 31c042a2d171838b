"""A tracker that records nothing: the processes of a multi-node run other than rank 0, which
records the run for all of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sparseland.tracking.run import Tracker


class NullTracker(Tracker):
    def __init__(self) -> None:
        super().__init__(None, "not-recorded-on-this-rank")

    def _deliver(self, action: Callable[[], Any], op: str, **payload: Any) -> None:
        return None
