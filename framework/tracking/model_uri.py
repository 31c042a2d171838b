"""Find a logged model's bundle from a model URI, on the run's tracking store."""

from __future__ import annotations

import os
import re
from pathlib import Path

from sparseland.errors import SparselandError

MODEL_NAME = "model"  # the name every run logs its model under: runs:/<id>/model
_RUN_ONLY = re.compile(r"^runs:/([0-9a-f]{32})/?$")


class ModelNotFoundError(SparselandError):
    pass


def normalise(uri: str) -> str:
    """``runs:/<id>`` means the run's model, ``runs:/<id>/model``."""
    match = _RUN_ONLY.match(uri)
    return f"runs:/{match.group(1)}/{MODEL_NAME}" if match else uri


def bundle_folder(model_dir: Path) -> Path:
    """The bundle inside an MLflow model folder (the ``data`` of its pyfunc flavour)."""
    from mlflow.models import Model

    if not (model_dir / "MLmodel").exists():
        raise ModelNotFoundError(f"{model_dir} is not an MLflow model folder (no MLmodel file)")
    flavor = Model.load(str(model_dir)).flavors.get("python_function", {})
    data = flavor.get("data")
    if not data or flavor.get("loader_module") != "sparseland.serving":
        raise ModelNotFoundError(f"{model_dir} is not a Sparseland model")
    return model_dir / data


def default_tracking_uri(configured: str | None = None) -> str:
    """``configured``, else ``MLFLOW_TRACKING_URI``, else ./outputs/mlflow.db (the default)."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI")
    return uri or f"sqlite:///{Path('outputs').resolve() / 'mlflow.db'}"


def download_model(uri: str, tracking_uri: str | None = None) -> Path:
    """The local bundle folder of the model at ``uri`` (a model URI or a local model folder).

    ``tracking_uri``: where the runs are (default: ``MLFLOW_TRACKING_URI``, else the SQLite
    store under ./outputs that ``sparseland`` writes by default)."""
    local = Path(uri)
    if "://" not in uri and ":/" not in uri:
        if not local.exists():
            raise ModelNotFoundError(
                f"{uri}: no such model folder; give runs:/<run id> or models:/<name>/<version>"
            )
        return bundle_folder(local.resolve())
    import mlflow.artifacts

    from sparseland.tracking.mlflow_context import using_store

    tracking = default_tracking_uri(tracking_uri)
    try:
        with using_store(tracking):  # runs:/ model URIs resolve on the global tracking URI
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=normalise(uri), tracking_uri=tracking, registry_uri=tracking
            )
    except Exception as exc:
        raise ModelNotFoundError(
            f"no model at {uri} in the tracking store {tracking} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); set MLFLOW_TRACKING_URI or "
            "tracking_uri= to the store the run was logged to"
        ) from None
    return bundle_folder(Path(path))
