"""``sparseland-sync`` given a sweep's folder finds every job in it that journaled."""

from __future__ import annotations

from pathlib import Path

from sparseland.tracking.journal import JOURNAL
from sparseland.tracking.sync import journaled


def test_a_sweep_folder_expands_to_its_journaled_jobs(tmp_path: Path) -> None:
    sweep = tmp_path / "multirun" / "2026-01-01" / "10-00-00"
    for job in ("0", "1", "2", "10"):
        (sweep / job).mkdir(parents=True)
    for job in ("1", "10"):
        (sweep / job / JOURNAL).write_text("{}\n")
    assert journaled(sweep) == [sweep / "1", sweep / "10"]
    assert journaled(sweep / "1") == [sweep / "1"]  # a run folder is itself
    assert journaled(sweep / "0") == [sweep / "0"]  # nothing journaled: syncing it says so
