"""Log a run's trained model to MLflow as a pyfunc model (``runs:/<id>/model``).

The model folder holds the bundle of model_bundle.py (state as safetensors, fitted
preprocessor, resolved config as YAML) as the ``data`` of a pyfunc flavour whose
``loader_module`` is ``sparseland.serving``: so ``sparseland.load``, ``mlflow.pyfunc.load_model``
and ``mlflow models serve`` all rebuild it from the installed plugins without unpickling. A
signature (tensor in, tensor out, params ``method`` and ``sigma``) and an input example are
logged with it; ``logger.register_model=<name>`` also registers it as a new version of <name>.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from sparseland.interfaces import SparselandDataModule, SparselandModule
from sparseland.interfaces.contracts import NoisyImage
from sparseland.model_bundle import write_bundle
from sparseland.tracking.model_uri import MODEL_NAME
from sparseland.tracking.run import Tracker

log = logging.getLogger("sparseland")
EXAMPLE_SIGNALS = 4
FAILURE_TAG = "sparseland.model_not_logged"
EXAMPLE_SIDE = 32  # side of the crop a denoiser's input example is cut from


def log_run_model(
    tracker: Tracker,
    cfg: DictConfig,
    model: SparselandModule,
    datamodule: SparselandDataModule,
    preprocessor: Any,
) -> str | None:
    """Log ``model`` into the run of ``tracker``; return its model URI (None when not logged).
    A model that cannot be logged does not fail the run: it is said in the log and a tag."""
    try:
        return _log_run_model(tracker, cfg, model, datamodule, preprocessor)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"[:4000]
        log.warning("the trained model could not be logged to MLflow (%s)", reason)
        tracker.set_tags({FAILURE_TAG: reason})
        return None


# log_run_model's arguments: it only adds the guard that keeps the run alive
def _log_run_model(
    tracker: Tracker,
    cfg: DictConfig,
    model: SparselandModule,
    datamodule: SparselandDataModule,
    preprocessor: Any,
) -> str | None:
    if tracker.offline or tracker.client is None:
        log.warning("tracking server unreachable: the model is not logged to MLflow")
        return None
    import mlflow
    import mlflow.pyfunc

    from sparseland.tracking.mlflow_context import using_store

    register = cfg.logger.get("register_model") or None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "sparseland"
        description = write_bundle(folder, cfg, model, datamodule, preprocessor)
        example = input_example(description, datamodule)
        signature = model_signature(description, model, example)
        with using_store(tracker.uri), mlflow.start_run(run_id=tracker.run_id):
            info = mlflow.pyfunc.log_model(
                name=MODEL_NAME,
                loader_module="sparseland.serving",
                data_path=str(folder),
                signature=signature,
                input_example=(example, {"method": description["default_method"]}),
                pip_requirements=requirements(description),
                registered_model_name=register,
            )
    if register:
        log.info("model registered as %s", register)
    return f"runs:/{tracker.run_id}/{MODEL_NAME}" if info is not None else None


def requirements(description: dict[str, Any]) -> list[str]:
    """The packages a served model needs: sparseland and every plugin package it was built with."""
    import importlib.metadata

    try:
        own = f"sparseland=={importlib.metadata.version('sparseland')}"
    except importlib.metadata.PackageNotFoundError:
        own = "sparseland"
    packages = {own}
    for info in description.get("plugins", {}).values():
        if info.get("distribution") not in (None, "unknown", "sparseland"):
            packages.add(f"{info['distribution']}=={info['version']}")
    return sorted(packages)


def input_example(description: dict[str, Any], datamodule: SparselandDataModule) -> np.ndarray:
    """A few signals as the data were before preprocessing, or a crop of a noisy image."""
    if description["default_method"] == "denoise":
        noisy = datamodule.noisy_image if isinstance(datamodule, NoisyImage) else None
        if isinstance(noisy, torch.Tensor) and noisy.ndim == 2:
            side = min(EXAMPLE_SIDE, *noisy.shape)
            return noisy[None, :side, :side].float().cpu().numpy()
        return np.full((1, EXAMPLE_SIDE, EXAMPLE_SIDE), 0.5, dtype=np.float32)
    batch = next(iter(datamodule.val_dataloader()))
    signals = batch.get("raw", batch["x"])[:EXAMPLE_SIGNALS]
    return signals.float().cpu().numpy()


def model_signature(
    description: dict[str, Any], model: SparselandModule, example: np.ndarray
) -> Any:
    """Tensor in, tensor out; sizes that vary from call to call are -1."""
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

    method = description["default_method"]
    image_input = method == "denoise" or description["data"]["signal_kind"] != "vector"
    in_shape = (-1,) + ((-1,) * (example.ndim - 1) if image_input else example.shape[1:])
    from sparseland.loading import LoadedModel
    from sparseland.serving import SparselandPyfunc

    was_training = model.training
    try:
        out = SparselandPyfunc(LoadedModel(model.eval(), None, description, None)).predict(
            example[:1] if not image_input or example.ndim > 2 else example,
            {"method": method},
        )
    finally:
        model.train(was_training)
    out_shape = (-1,) + ((-1,) * (out.ndim - 1) if image_input else out.shape[1:])
    sigma = description["data"].get("sigma") or 0.0
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), in_shape)]),
        outputs=Schema([TensorSpec(out.dtype, out_shape)]),
        params=ParamSchema(
            [ParamSpec("method", "string", method), ParamSpec("sigma", "double", float(sigma))]
        ),
    )
