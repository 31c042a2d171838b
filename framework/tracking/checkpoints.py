"""Checkpoints in the tracking store, so a run resumes on any machine that reaches it.

``UploadingCheckpoint`` is Lightning's ``ModelCheckpoint`` that also uploads every checkpoint
it writes to the run's artifacts (``checkpoints/last.ckpt``). ``resume=<run id>`` downloads
that checkpoint into a fresh run directory and the run goes on from it, logging into the same
MLflow run; ``resume=<run dir>`` keeps working from a local directory.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from sparseland.errors import SparselandError
from sparseland.tracking.fingerprint import TAG as HASH_TAG
from sparseland.tracking.fingerprint import config_hash
from sparseland.tracking.run import Tracker
from sparseland.tracking.store import resolve_tracking_uri

log = logging.getLogger("sparseland")
ARTIFACT_DIR = "checkpoints"
LAST = "last.ckpt"
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


class UploadingCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that uploads each checkpoint it saves to the run's artifacts."""

    def __init__(self, tracker: Tracker, **options: Any) -> None:
        super().__init__(**options)
        self.tracker = tracker

    def _save_checkpoint(self, trainer: Any, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        if trainer.is_global_zero and Path(filepath).exists():
            self.tracker.log_artifact(filepath, ARTIFACT_DIR)


def is_run_id(value: Any) -> bool:
    """Whether ``resume=`` names an MLflow run (32 hex digits) rather than a run directory."""
    return isinstance(value, str) and bool(_RUN_ID.match(value)) and not Path(value).exists()


def restore_run(cfg: DictConfig, run_id: str, run_dir: Path, run_id_file: str) -> Path:
    """Make ``run_dir`` a resumable run directory of the MLflow run ``run_id``: its last
    uploaded checkpoint and its run id. Returns ``run_dir``."""
    from mlflow.tracking import MlflowClient

    uri = resolve_tracking_uri(cfg.logger.tracking_uri, cfg.paths.outputs)
    client = MlflowClient(tracking_uri=uri)
    try:
        run = client.get_run(run_id)
    except Exception:
        raise SparselandError(
            f"resume={run_id}: no such run in the tracking store {uri}; set "
            "logger.tracking_uri (or MLFLOW_TRACKING_URI) to the store the run was logged to"
        ) from None
    stored = {a.path for a in client.list_artifacts(run_id, ARTIFACT_DIR)}
    if f"{ARTIFACT_DIR}/{LAST}" not in stored:
        raise SparselandError(
            f"resume={run_id}: the run uploaded no checkpoint ({ARTIFACT_DIR}/{LAST}); it "
            "stopped before its first checkpoint, so start it again instead"
        )
    expected = run.data.tags.get(HASH_TAG)
    if expected and expected != config_hash(cfg):
        log.warning(
            "resume=%s: this config differs from the run's (tag %s); pass the same overrides "
            "as the original run to continue it as it was",
            run_id,
            HASH_TAG,
        )
    folder = run_dir / ARTIFACT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    client.download_artifacts(run_id, f"{ARTIFACT_DIR}/{LAST}", str(run_dir))
    (run_dir / run_id_file).write_text(run_id)
    log.info("resuming run %s from its uploaded checkpoint, in %s", run_id, run_dir)
    return run_dir
