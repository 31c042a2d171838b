"""MLflow tracking: the embedded SQLite store by default, a server when a team shares one."""

from sparseland.tracking.run import Tracker, flatten_config
from sparseland.tracking.store import open_store, resolve_tracking_uri

__all__ = ["Tracker", "flatten_config", "open_store", "resolve_tracking_uri"]
