"""Convergence on the record: what the pursuit calls of one stage of a run did.

The runner records each stage (training, the final evaluation)::

    with convergence.record() as evaluation:
        metrics = task.run(...)
    evaluation.metrics()  # {"pursuit/converged_fraction": ..., "pursuit/max_gap": ...}

Every :class:`~sparseland.interfaces.Pursuit` call notes its ``PursuitInfo`` in the innermost
open record. While a record is open, pursuits do not warn per call: the run reports once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparseland.interfaces.pursuit import PursuitInfo

UNCONVERGED_TAG = "sparseland.unconverged"


@dataclass
class ConvergenceRecord:
    """The pursuit calls of one stage: how many signals met their tolerance, the worst gap."""

    calls: int = 0
    unconverged_calls: int = 0
    signals: int = 0  # signals of the calls that have a tolerance
    converged_signals: float = 0.0
    worst_fraction: float = 1.0  # of a single call
    max_gap: float = math.nan
    pursuits: set[str] = field(default_factory=set)  # those that fell short

    def note(self, pursuit: str, info: PursuitInfo, n_signals: int) -> None:
        fraction, gap = float(info.converged_fraction), float(info.max_gap)
        if n_signals <= 0 or fraction != fraction:  # no signals, or no tolerance to meet
            return
        self.calls += 1
        self.signals += n_signals
        self.converged_signals += fraction * n_signals
        self.worst_fraction = min(self.worst_fraction, fraction)
        if gap == gap:
            self.max_gap = gap if self.max_gap != self.max_gap else max(self.max_gap, gap)
        if fraction < 1.0:
            self.unconverged_calls += 1
            self.pursuits.add(pursuit)

    @property
    def unconverged(self) -> bool:
        return self.unconverged_calls > 0

    @property
    def converged_fraction(self) -> float:
        """The fraction of all signals solved in this stage that met their tolerance."""
        return self.converged_signals / self.signals if self.signals else math.nan

    def metrics(self, prefix: str = "pursuit/") -> dict[str, float]:
        """``converged_fraction`` and ``max_gap`` (empty when no call had a tolerance)."""
        if not self.calls:
            return {}
        out = {f"{prefix}converged_fraction": self.converged_fraction}
        if self.max_gap == self.max_gap:
            out[f"{prefix}max_gap"] = self.max_gap
        return out

    def describe(self, stage: str) -> str:
        """One sentence for the console, e.g. for ``stage="the final evaluation"``."""
        gap = "" if self.max_gap != self.max_gap else f", worst remaining gap {self.max_gap:.2g}"
        return (
            f"in {stage}, {self.unconverged_calls} of {self.calls} calls of "
            f"{', '.join(sorted(self.pursuits))} stopped at max_iter short of their tolerance "
            f"({self.converged_fraction:.1%} of the signals converged, {self.worst_fraction:.1%} "
            f"in the worst call{gap})"
        )


_open: ContextVar[tuple[ConvergenceRecord, ...]] = ContextVar("sparseland_convergence", default=())


@contextmanager
def record() -> Iterator[ConvergenceRecord]:
    """Record the pursuit calls made inside the ``with`` block."""
    rec = ConvergenceRecord()
    token = _open.set((*_open.get(), rec))
    try:
        yield rec
    finally:
        _open.reset(token)


def recording() -> bool:
    """True inside :func:`record` (pursuits then leave the reporting to the run)."""
    return bool(_open.get())


def note(pursuit: str, info: PursuitInfo | None, n_signals: int) -> None:
    """Note one pursuit call in the innermost open record (nothing when none is open)."""
    records = _open.get()
    if records and info is not None:
        records[-1].note(pursuit, info, n_signals)


def report(training: ConvergenceRecord, evaluation: ConvergenceRecord) -> str | None:
    """The run's one message about unconverged solves (None when every solve converged)."""
    parts = [
        rec.describe(stage)
        for rec, stage in ((training, "training"), (evaluation, "the final evaluation"))
        if rec.unconverged
    ]
    if not parts:
        return None
    tagged = (
        f" The run is tagged {UNCONVERGED_TAG}=true: its test metrics rest on unconverged codes."
        if evaluation.unconverged
        else ""
    )
    return (
        "pursuit not converged: "
        + "; ".join(parts)
        + "."
        + tagged
        + " Raise pursuit.max_iter (or pursuit.tol) for converged codes."
    )
