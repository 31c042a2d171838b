"""A team's tracking server: ``mlflow server`` on a PostgreSQL backend store, artifacts in a
local folder that the server serves (clients upload through it, so workers need no shared disk).

``nox -s tracking-server`` (or ``python -m sparseland.tracking.server``) starts both on
127.0.0.1 and keeps them up until Ctrl-C; point every job at the printed URI with
``MLFLOW_TRACKING_URI`` or ``logger.tracking_uri=``. Optuna studies share the same cluster
(``postgresql+psycopg2://sparseland@HOST:PORT/optuna``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sparseland.errors import SparselandError
from sparseland.tracking.postgres import PostgresCluster


@dataclass
class MlflowServer:
    """``mlflow server`` bound to ``host:port`` with ``backend`` (a database URL) as its store."""

    backend: str
    artifacts: Path
    port: int = 5000
    host: str = "127.0.0.1"
    log: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 180.0) -> None:
        """Start and wait until it answers /health (the first start creates the tables)."""
        self.artifacts.mkdir(parents=True, exist_ok=True)
        exe = Path(sys.executable).with_name("mlflow")
        sink = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                str(exe), "server",
                "--host", self.host,
                "--port", str(self.port),
                "--workers", "1",
                "--backend-store-uri", self.backend,
                "--artifacts-destination", str(self.artifacts),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends the workers too
        )  # fmt: skip
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SparselandError(
                    f"mlflow server exited with {self.proc.returncode} at start"
                    + (f"; see {self.log}" if self.log else "")
                )
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise SparselandError(f"mlflow server did not answer {self.uri}/health in {timeout:.0f} s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """End the server; ``signal.SIGKILL`` kills it as a crash would."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


@dataclass
class TeamServer:
    """PostgreSQL and MLflow together, under one folder: ``root/postgres``, ``root/artifacts``."""

    root: Path
    port: int = 5000
    pg_port: int = 5432

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.database = PostgresCluster(self.root / "postgres", self.pg_port)
        self.mlflow = MlflowServer(
            self.database.url("mlflow"),
            self.root / "artifacts",
            self.port,
            log=self.root / "mlflow.log",
        )

    @property
    def uri(self) -> str:
        return self.mlflow.uri

    @property
    def optuna_storage(self) -> str:
        return self.database.url("optuna")

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.database.start()
        try:
            self.mlflow.start()
        except BaseException:
            self.database.stop()
            raise

    def stop(self) -> None:
        self.mlflow.stop()
        self.database.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("outputs/team-server"))
    parser.add_argument("--port", type=int, default=5000, help="MLflow's port")
    parser.add_argument("--pg-port", type=int, default=5432, help="PostgreSQL's port")
    args = parser.parse_args(argv)
    server = TeamServer(args.root, args.port, args.pg_port)
    try:
        server.start()
    except SparselandError as exc:
        print(f"tracking-server: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"MLflow: export MLFLOW_TRACKING_URI={server.uri}")
    print(f"Optuna: hydra.sweeper.storage={server.optuna_storage}")
    print("Ctrl-C stops both.", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while server.mlflow.proc is not None and server.mlflow.proc.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
