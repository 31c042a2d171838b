"""Reuse a finished sweep job when its config and its code are unchanged; say why not otherwise.

A reused job still belongs to the new sweep: a small child run of the new parent, tagged
``sparseland.kind=reused`` and ``sparseland.reused_from=<run id>``, carries the params and the
metrics of the run it reuses, so ``sparseland-compare --parent`` lists every job of the sweep.
"""

from __future__ import annotations

import logging
from typing import Any

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from sparseland.tracking.code_version import CODE_TAG, CodeVersion
from sparseland.tracking.fingerprint import TAG as HASH_TAG
from sparseland.tracking.run import Tracker

log = logging.getLogger("sparseland")
KIND_TAG = "sparseland.kind"
REUSED = "reused"
REUSED_FROM_TAG = "sparseland.reused_from"
# Tags of the reused run that describe where it ran, not its result: not copied.
NOT_COPIED = (KIND_TAG, HASH_TAG, "sparseland.run_dir", "sparseland.resumed")


def finished_with_config(client: MlflowClient, experiment_id: str, digest: str) -> list[Run]:
    """FINISHED, not deleted runs of this experiment with config hash ``digest``, newest first."""
    return list(
        client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{HASH_TAG}` = '{digest}' and attributes.status = 'FINISHED'",
            max_results=100,
            order_by=["attributes.start_time DESC"],
        )
    )


def reuse_finished(
    client: MlflowClient,
    experiment_id: str,
    digest: str,
    code: CodeVersion,
    params: dict[str, str],
    run_name: str,
    parent_run_id: str | None,
) -> dict[str, float] | None:
    """The test metrics of a finished run with the same config and code, recorded again under
    ``parent_run_id``; None (and a log line saying why) when the job must run."""
    runs = finished_with_config(client, experiment_id, digest)
    if not runs:
        return None
    same = [r for r in runs if r.data.tags.get(CODE_TAG) == code.digest]
    if not same:
        latest = runs[0]
        changed = ", ".join(code.changes_since(latest.data.tags))
        log.info("running again: code changed since run %s: %s", latest.info.run_id, changed or "?")
        return None
    original = same[0]
    marker = record_reuse(client, experiment_id, original, params, run_name, parent_run_id)
    log.info(
        "reusing run %s: same config and code (recorded as run %s; force=true reruns it)",
        original.info.run_id,
        marker.run_id,
    )
    return {k: v for k, v in original.data.metrics.items() if k.startswith("test/")}


def record_reuse(
    client: MlflowClient,
    experiment_id: str,
    original: Run,
    params: dict[str, str],
    run_name: str,
    parent_run_id: str | None,
) -> Tracker:
    """A FINISHED child run of ``parent_run_id`` that points at ``original`` and carries its
    params and (latest) metrics."""
    tags: dict[str, Any] = {
        k: v
        for k, v in original.data.tags.items()
        if k.startswith("sparseland.") and k not in NOT_COPIED
    }
    tags.update({KIND_TAG: REUSED, REUSED_FROM_TAG: original.info.run_id})
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    tracker = Tracker.create(client, experiment_id, run_name=run_name, tags=tags)
    tracker.log_params(params)
    if original.data.metrics:
        tracker.log_metrics(dict(original.data.metrics))
    tracker.end("FINISHED")
    return tracker
