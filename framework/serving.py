"""The pyfunc flavour of a Sparseland model (``loader_module``): what ``mlflow models serve``
and ``mlflow.pyfunc.load_model`` call. The bundle is read as in ``sparseland.load``; nothing is
unpickled.

Request: a batch as a tensor, ``{"inputs": [...], "params": {"method": ..., "sigma": ...}}``.
``method`` is ``encode`` (signals → codes), ``decode``, ``predict`` (signals → labels) or
``denoise`` (noisy grey images (n, H, W) or one (H, W) in [0, 1] → denoised; ``sigma`` in the
same units); the default is the one the run was trained for (see the model's signature).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from sparseland.loading import LoadedModel, load_bundle

DEVICE_VARIABLE = "SPARSELAND_DEVICE"  # the device a served model runs on (default cpu)


class SparselandPyfunc:
    def __init__(self, model: LoadedModel) -> None:
        self.model = model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        params = params or {}
        method = str(params.get("method") or self.model.default_method)
        x = _as_array(model_input)
        with torch.no_grad():
            if method == "denoise":
                sigma = params.get("sigma")
                sigma = float(sigma) if sigma not in (None, "", 0, 0.0) else None
                images = x[None] if x.ndim == 2 else x
                out = torch.stack([self.model.denoise(image, sigma) for image in images])
                result = out[0] if x.ndim == 2 else out
            elif method == "encode":
                result = self.model.encode(x)
            elif method == "decode":
                result = self.model.decode(x)
            elif method == "predict":
                result = self.model.predict(x)
            else:
                raise ValueError(f"method '{method}' is not one of {', '.join(self.model.methods)}")
        return result.detach().cpu().numpy()


def _as_array(model_input: Any) -> np.ndarray:
    if isinstance(model_input, dict):  # named tensors: the first one
        model_input = next(iter(model_input.values()))
    if hasattr(model_input, "to_numpy"):  # a DataFrame: one signal per row
        model_input = model_input.to_numpy()
    return np.asarray(model_input, dtype=np.float32)


def _load_pyfunc(data_path: str) -> SparselandPyfunc:
    return SparselandPyfunc(load_bundle(data_path, os.environ.get(DEVICE_VARIABLE, "cpu")))
