"""``sparseland-sync RUN_DIR...``: upload what runs journaled while the server was down
(a sweep's folder syncs every job in it that journaled)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from sparseland.errors import SparselandError
from sparseland.tracking.journal import JOURNAL, Journal
from sparseland.tracking.store import check_reachable

RUN_ID_FILE = "mlflow_run_id.txt"


def sync_run(run_dir: Path, tracking_uri: str | None = None) -> str:
    """Replay ``run_dir``'s journal into the server; returns the run id there."""
    journal = Journal(run_dir)
    entries = journal.entries()
    if not entries:
        raise SparselandError(f"{run_dir}: nothing to sync (no {JOURNAL})")
    run_id = (run_dir / RUN_ID_FILE).read_text().strip() if (run_dir / RUN_ID_FILE).exists() else ""
    uri = tracking_uri or next((e["uri"] for e in entries if e.get("uri")), None)
    if uri is None:
        raise SparselandError(
            f"{run_dir}: pass --tracking-uri (the journal does not name a server)"
        )
    check_reachable(uri)
    client = MlflowClient(tracking_uri=uri)
    for entry in entries:
        op = entry["op"]
        if op == "create_run":
            found = client.get_experiment_by_name(entry["experiment"])
            experiment_id = (
                found.experiment_id if found else client.create_experiment(entry["experiment"])
            )
            run_id = client.create_run(
                experiment_id, run_name=entry["run_name"], tags=entry["tags"]
            ).info.run_id
            (run_dir / RUN_ID_FILE).write_text(run_id)
        elif op == "params":
            client.log_batch(run_id, params=[Param(k, v) for k, v in entry["params"].items()])
        elif op == "metrics":
            client.log_batch(
                run_id,
                metrics=[
                    Metric(k, v, entry["timestamp"], entry["step"])
                    for k, v in entry["metrics"].items()
                ],
            )
        elif op == "tags":
            client.log_batch(run_id, tags=[RunTag(k, v) for k, v in entry["tags"].items()])
        elif op == "artifact":
            client.log_artifact(run_id, entry["path"], entry["artifact_path"])
        elif op == "end":
            client.set_terminated(run_id, entry["status"])
    journal.path.rename(journal.path.with_suffix(".synced"))
    return run_id


def journaled(folder: Path) -> list[Path]:
    """``folder`` if it holds a journal, else every run folder under it that does (a sweep's
    folder: its jobs); ``[folder]`` when none does, so that syncing it says so."""
    if (folder / JOURNAL).exists():
        return [folder]
    return sorted(path.parent for path in folder.rglob(JOURNAL)) or [folder]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "run_dirs", nargs="+", type=Path, help="run folders, or a sweep's folder (all its jobs)"
    )
    parser.add_argument("--tracking-uri", default=None, help="default: the server the run used")
    args = parser.parse_args(argv)
    try:
        for run_dir in (found for folder in args.run_dirs for found in journaled(folder)):
            print(f"{run_dir}: synced into run {sync_run(run_dir, args.tracking_uri)}")
    except SparselandError as exc:
        print(f"sparseland-sync: error: {exc}", file=sys.stderr)
        sys.exit(2)
