"""A PostgreSQL cluster of our own on 127.0.0.1: the database behind a team's MLflow server and
its shared Optuna studies.

The cluster lives in one folder (``initdb`` once, then ``pg_ctl start``/``stop``); it listens
only on 127.0.0.1 and trusts local connections, so it is for one host or a private network, not
the open internet. PostgreSQL refuses to run as root: as root the commands run as the
``postgres`` user that Debian's ``postgresql`` package creates.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sparseland.errors import SparselandError

USER = "sparseland"  # the cluster's superuser
DATABASES = ("mlflow", "optuna")  # MLflow's and Optuna's tables each need a database of their own
SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/local/bin", "/usr/bin")


def find_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (newest Debian version first), or None."""
    override = os.environ.get("SPARSELAND_PG_BIN")
    candidates = [Path(override)] if override else []
    for pattern in SEARCH:
        root = Path(pattern.split("*")[0])
        if "*" in pattern:
            candidates += sorted(root.glob(pattern[len(str(root)) + 1 :]), reverse=True)
        else:
            candidates.append(root)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


def missing_reason() -> str | None:
    """Why a cluster cannot be started here (None: it can)."""
    if find_binaries() is None:
        return (
            "no PostgreSQL server binaries (initdb, pg_ctl); install Debian's `postgresql` "
            "package (.ci/run does as root) or set SPARSELAND_PG_BIN to their folder"
        )
    if os.geteuid() == 0 and not _has_user("postgres"):
        return "running as root and there is no `postgres` user to run PostgreSQL as"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed: pip install 'sparseland[team]'"
    return None


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@dataclass
class PostgresCluster:
    """``root``: the cluster's folder (created if new); ``port``: where it listens."""

    root: Path
    port: int = 5432

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "mlflow") -> str:
        """A SQLAlchemy URL (psycopg2 named: SQLAlchemy 2 would pick the psycopg 3 driver)."""
        return f"postgresql+psycopg2://{USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        reason = missing_reason()
        if reason:
            raise SparselandError(f"cannot start PostgreSQL: {reason}")
        self.root.mkdir(parents=True, exist_ok=True)
        fresh = not (self.data_dir / "PG_VERSION").exists()
        if fresh:
            self._own(self.root)
            self._pg("initdb", "-D", str(self.data_dir), "-U", USER, "--auth=trust", "-E", "UTF8")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root}"
        self._pg(
            "pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", str(self.root / "log"),
            "-w", "start",
        )  # fmt: skip
        if fresh:
            for database in DATABASES:
                self._pg("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, database)

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def _own(self, folder: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
            folder.chmod(0o700)

    def _pg(self, program: str, *args: str) -> None:
        folder = find_binaries()
        assert folder is not None
        command = [str(folder / program), *args]
        if os.geteuid() == 0:  # PostgreSQL refuses root
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            hint = (
                f"; as root it runs as `postgres`, which must reach {self.root} (every parent "
                "folder executable by others)"
                if os.geteuid() == 0
                else ""
            )
            raise SparselandError(
                f"{program} failed ({done.returncode}): {(done.stderr or done.stdout)[-1500:]}"
                f" (the server's log: {self.root / 'log'}{hint})"
            )
