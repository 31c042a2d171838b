"""Point MLflow's global (fluent) API at one store for a moment, and leave no trace.

``mlflow.pyfunc.log_model`` and the resolution of ``runs:/`` model URIs use MLflow's global
tracking and registry URIs; setting them also exports ``MLFLOW_TRACKING_URI`` and
``MLFLOW_REGISTRY_URI``, which would send every later run of the process to that store. This
context manager restores the globals and the environment as they were.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextmanager
def using_store(uri: str) -> Iterator[None]:
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved_env = {name: os.environ.get(name) for name in VARIABLES}
    saved_tracking = tracking_utils._tracking_uri
    saved_registry = registry_utils._registry_uri
    try:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        yield
    finally:
        tracking_utils._tracking_uri = saved_tracking
        registry_utils._registry_uri = saved_registry
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
