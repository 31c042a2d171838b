"""Shared Optuna studies in a database (``hydra.sweeper.storage=postgresql+psycopg2://...``).

hydra-optuna-sweeper 1.x pins Optuna 2.10, which stamps its schema revision on a connection it
never commits; under SQLAlchemy 2 (no autocommit) the stamp is rolled back and every later
start fails with "no longer compatible with the table schema". ``commit_schema_stamp`` makes
the stamp commit. The Hydra callback below applies it before the sweeper opens the study.
"""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def commit_schema_stamp() -> None:
    import alembic.migration
    from optuna.storages._rdb import storage

    manager = storage._VersionManager
    if getattr(manager, "_sparseland_commits", False):
        return

    def set_revision(self: Any, revision: str) -> None:
        with self.engine.begin() as connection:  # commits on leaving the block
            context = alembic.migration.MigrationContext.configure(connection)
            context.stamp(self._create_alembic_script(), revision)

    manager._set_alembic_revision = set_revision  # type: ignore[method-assign]
    manager._sparseland_commits = True  # type: ignore[attr-defined]


class OptunaStorageCallback(Callback):
    """Listed under ``hydra.callbacks`` by ``hparams_search=optuna``."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.sweeper.get("storage"):
            commit_schema_stamp()
