"""Shared Optuna studies in a database (``hydra.sweeper.storage=postgresql+psycopg2://...``).

hydra-optuna-sweeper 1.x pins Optuna 2.10, which stamps its schema revision on a connection it
never commits; under SQLAlchemy 2 (no autocommit) the stamp is rolled back and every later
start fails with "no longer compatible with the table schema". ``commit_schema_stamp`` makes
the stamp commit. The Hydra callback below applies it before the sweeper opens the study.

Several sweepers started at once on a fresh database would each create the schema and collide
("duplicate key ... alembic_version"): ``create_schema`` creates it once, under a PostgreSQL
advisory lock, before the sweeper opens the study.
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


SCHEMA_LOCK = 0x5350_4C44  # an application-wide key for pg_advisory_lock ("SPLD")


def create_schema(url: str) -> None:
    """Create Optuna's tables in ``url`` once, even with several sweepers starting together."""
    import optuna
    import sqlalchemy

    commit_schema_stamp()
    if not url.startswith("postgresql"):
        optuna.storages.RDBStorage(url)
        return
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f"SELECT pg_advisory_lock({SCHEMA_LOCK})"))
            try:
                optuna.storages.RDBStorage(url)  # creates and stamps the schema if missing
            finally:
                connection.execute(sqlalchemy.text(f"SELECT pg_advisory_unlock({SCHEMA_LOCK})"))
    finally:
        engine.dispose()


class OptunaStorageCallback(Callback):
    """Listed under ``hydra.callbacks`` by ``hparams_search=optuna``."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        storage = config.hydra.sweeper.get("storage")
        if storage:
            create_schema(str(storage))
