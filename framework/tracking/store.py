"""Where runs are recorded, and making sure the store is there before any training starts."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from mlflow.tracking import MlflowClient

from sparseland.errors import TrackingUnavailableError

T = TypeVar("T")

# MLflow's REST client retries an unreachable server for minutes by default; a run should
# notice an outage in seconds and journal instead (users may still set their own values).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


def resolve_tracking_uri(configured: str | None, outputs: str | Path) -> str:
    """``logger.tracking_uri`` if set, else ``MLFLOW_TRACKING_URI``, else SQLite under outputs/."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    root = Path(outputs).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def artifact_root(outputs: str | Path) -> str:
    return (Path(outputs).resolve() / "mlartifacts").as_uri()


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, before training, when a tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as reply:
            if reply.status == 200:
                return
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = str(getattr(exc, "reason", exc))
    else:
        reason = "it did not answer /health with 200"
    raise TrackingUnavailableError(
        f"MLflow tracking server {uri} is unreachable ({reason}). Start it, point "
        "MLFLOW_TRACKING_URI / logger.tracking_uri at a running one, or set "
        "logger.offline=true to record locally and upload later with `sparseland-sync`."
    )


def retry(action: Callable[[], T], attempts: int = 8, delay: float = 0.2) -> T:
    """Retry an action SQLite may refuse while another process writes ("database is locked")."""
    for attempt in range(attempts):
        try:
            return action()
        except Exception as exc:
            transient = "locked" in str(exc) or "busy" in str(exc).lower()
            if not transient or attempt == attempts - 1:
                raise
            time.sleep(delay * (2**attempt))
    raise AssertionError("unreachable")


@contextmanager
def sqlite_lock(uri: str) -> Iterator[None]:
    """Serialise creating/migrating an SQLite store across processes (parallel sweep jobs)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    lock_path = Path(uri.removeprefix("sqlite:///") + ".lock")
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_store(uri: str, experiment: str, outputs: str | Path) -> tuple[MlflowClient, str]:
    """A client and the id of ``experiment`` (created with artifacts under outputs/ if new)."""
    check_reachable(uri)
    with sqlite_lock(uri):  # MLflow creates and migrates the database when the client is made
        client = MlflowClient(tracking_uri=uri)
        return client, retry(lambda: _experiment_id(client, uri, experiment, outputs))


def _experiment_id(client: MlflowClient, uri: str, experiment: str, outputs: str | Path) -> str:
    """The id of ``experiment``, created (artifacts under outputs/ on SQLite) if it is new."""
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return str(found.experiment_id)
    location = artifact_root(outputs) + f"/{experiment}" if uri.startswith("sqlite") else None
    try:
        return str(client.create_experiment(experiment, artifact_location=location))
    except Exception:
        found = client.get_experiment_by_name(experiment)  # created by a parallel job
        if found is None:
            raise
        return str(found.experiment_id)
