"""Load the plugins through their entry points first, as the app does, so the registry records
which installed distribution registered each plugin (importing the module directly first would
register it with an unknown distribution)."""

from sparseland.registry import load_plugins

load_plugins()
