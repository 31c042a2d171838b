"""A Hydra callback that makes one MLflow parent run per sweep; each job becomes its child."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

PARENT_FILE = "mlflow_parent_run.txt"


def parent_file(sweep_dir: str | Path) -> Path:
    return Path(sweep_dir) / PARENT_FILE


class MlflowSweepCallback(Callback):
    """Creates the parent run (and the SQLite store) before any job starts, so parallel jobs
    never race to create or migrate the database."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from sparseland.console import sweep_banner
        from sparseland.tracking.run import Tracker
        from sparseland.tracking.store import open_store, resolve_tracking_uri

        outputs = config.paths.outputs
        uri = resolve_tracking_uri(config.logger.tracking_uri, outputs)
        client, experiment_id = open_store(uri, config.logger.experiment, outputs)
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        tracker = Tracker.create(
            client,
            experiment_id,
            run_name=f"sweep {sweep_dir.name}",
            tags={"sparseland.sweep_dir": str(sweep_dir.resolve()), "sparseland.kind": "sweep"},
        )
        parent_file(sweep_dir).write_text(tracker.run_id)
        print(sweep_banner(tracker.run_id, config.logger.experiment, uri, finished=False))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from mlflow.tracking import MlflowClient

        from sparseland.console import sweep_banner
        from sparseland.tracking.store import resolve_tracking_uri

        path = parent_file(config.hydra.sweep.dir)
        if not path.exists():
            return
        uri = resolve_tracking_uri(config.logger.tracking_uri, config.paths.outputs)
        parent = path.read_text().strip()
        MlflowClient(tracking_uri=uri).set_terminated(parent, "FINISHED")
        print(sweep_banner(parent, config.logger.experiment, uri, finished=True))
