"""MLflow tracking: the embedded SQLite store by default, a server when a team shares one."""

from framework.tracking.run import Tracker, flatten_config
from framework.tracking.store import open_store, resolve_tracking_uri

__all__ = ["Tracker", "flatten_config", "open_store", "resolve_tracking_uri"]
