"""A local journal of tracking writes, for when the tracking server cannot be reached.

Every write a run could not deliver (params, metrics with their timestamps, tags, artifacts,
the final status) is appended to ``<run dir>/tracking_journal.jsonl``; artifacts are copied
beside it. ``sparseland-sync <run dir>`` replays the journal into the server, in order, so
nothing is lost.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

JOURNAL = "tracking_journal.jsonl"
ARTIFACTS = "journal_artifacts"


class Journal:
    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / JOURNAL
        self.artifacts = run_dir / ARTIFACTS

    def append(self, op: str, **payload: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if op == "artifact":  # keep a copy: temporary files vanish after the call
            source = Path(payload["path"])
            target = self.artifacts / str(len(list(self.artifacts.glob("*")))) / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            payload["path"] = str(target)
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"op": op, **payload}) + "\n")

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def exists(self) -> bool:
        return self.path.exists()
