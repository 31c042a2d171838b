"""``sparseland.load(uri)``: a trained model back from MLflow, ready to use.

    model = sparseland.load("runs:/<run id>")            # or "models:/<name>/<version>"
    codes = model.encode(signals)                          # dictionary and CSC models
    clean = model.denoise(noisy_image, sigma=25 / 255)     # denoisers
    labels = model.predict(images)                         # classifiers

The model is rebuilt from its bundle (model_bundle.py) with the installed plugins: the state
comes from safetensors, the config from YAML; nothing is unpickled.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from omegaconf import DictConfig, OmegaConf

from sparseland import registry
from sparseland.errors import SparselandError, UnknownPluginError
from sparseland.interfaces import ModelContext, Preprocessor, SparselandModule
from sparseland.model_bundle import CONFIG, DESCRIPTION, PREPROCESSOR, STATE
from sparseland.recorded_data import RecordedData
from sparseland.tracking.model_uri import download_model

log = logging.getLogger("sparseland")


class MissingPluginError(SparselandError):
    """A plugin the saved model was built with is not installed here."""


class MethodNotAvailableError(SparselandError):
    pass


Array = torch.Tensor | np.ndarray


class LoadedModel:
    """A trained model with its preprocessor, offering the natural methods of its kind."""

    def __init__(
        self,
        module: SparselandModule,
        preprocessor: Preprocessor | None,
        description: dict[str, Any],
        config: Any,
    ) -> None:
        self.module = module
        self.preprocessor = preprocessor
        self.description = description
        self.config = config
        self.methods: list[str] = list(description.get("methods", []))
        self.default_method = str(description.get("default_method", "encode"))
        self.data: dict[str, Any] = dict(description.get("data", {}))

    @property
    def name(self) -> str:
        return str(self.description.get("model", type(self.module).__name__))

    @property
    def device(self) -> torch.device:
        return self.module.device

    def __repr__(self) -> str:
        return f"<sparseland model '{self.name}' ({', '.join(self.methods)}) on {self.device}>"

    # -- the natural methods
    @torch.no_grad()
    def encode(self, signals: Array) -> torch.Tensor:
        """Codes of ``signals`` (n, *signal_shape), given as the data were before preprocessing."""
        self._require("encode")
        return self.module.encode(self._preprocessed(self._as_batch(signals)))

    @torch.no_grad()
    def decode(self, codes: Array, raw: Array | None = None) -> torch.Tensor:
        """Signals from ``codes``, the preprocessing undone (``raw``: the signals coded, which
        per-signal steps such as DC removal need to add back what they removed)."""
        self._require("decode")
        out = self.module.decode(self._tensor(codes))
        if self._row_preprocessor() is None:
            return out
        assert self.preprocessor is not None
        raw_rows = None if raw is None else self._tensor(raw).reshape(out.shape[0], -1)
        return self.preprocessor.inverse_transform(out.reshape(out.shape[0], -1), raw=raw_rows)

    @torch.no_grad()
    def denoise(self, image: Array, sigma: float | None = None) -> torch.Tensor:
        """The denoised grey image (H, W) of ``image`` in [0, 1] units; ``sigma``: the noise
        standard deviation in the same units (default: the noise the model was trained for)."""
        self._require("denoise")
        image = self._tensor(image)
        if image.ndim != 2:
            raise SparselandError(
                f"denoise takes one grey image (H, W), got shape {tuple(image.shape)}; "
                "denoise a colour image one channel at a time"
            )
        sigma = self.default_sigma() if sigma is None else float(sigma)
        return self.module.denoise_image(image, sigma).to(image.device)  # type: ignore[operator]

    @torch.no_grad()
    def predict(self, signals: Array) -> torch.Tensor:
        """Class labels of ``signals`` (n, *signal_shape)."""
        self._require("predict")
        x = self._preprocessed(self._as_batch(signals))
        return self.module.classify(x)  # type: ignore[operator]

    def default_sigma(self) -> float:
        sigma = self.data.get("sigma")
        if sigma is None:
            raise SparselandError(
                "this model was not trained at a known noise level: give sigma= "
                "(noise standard deviation in [0, 1] units)"
            )
        return float(sigma)

    # -- helpers
    def _require(self, method: str) -> None:
        if method not in self.methods:
            raise MethodNotAvailableError(
                f"model '{self.name}' has no {method}(); it offers {', '.join(self.methods)}"
            )

    def _tensor(self, value: Array) -> torch.Tensor:
        tensor = torch.as_tensor(
            np.asarray(value) if not isinstance(value, torch.Tensor) else value
        )
        return tensor.to(device=self.device, dtype=torch.float32)

    def _as_batch(self, signals: Array) -> torch.Tensor:
        x = self._tensor(signals)
        shape = tuple(self.data.get("signal_shape") or ())
        if not shape or tuple(x.shape[1:]) == shape:
            return x
        if x.ndim < 2 or x.shape[1:].numel() != int(np.prod(shape)):
            raise SparselandError(
                f"model '{self.name}' takes signals of shape (n, {', '.join(map(str, shape))}), "
                f"got {tuple(x.shape)}"
            )
        return x.reshape(x.shape[0], *shape)  # e.g. p×p patches given as images

    def _row_preprocessor(self) -> Preprocessor | None:
        pre = self.preprocessor
        if pre is None or pre.corrupts:  # corruption is for training only
            return None
        return pre if self.data.get("signal_kind", "vector") == "vector" else None

    def _preprocessed(self, x: torch.Tensor) -> torch.Tensor:
        pre = self._row_preprocessor()
        if pre is None:
            return x
        return pre.transform(x.reshape(x.shape[0], -1)).reshape(x.shape)


def load(
    uri: str, device: str | torch.device = "cpu", tracking_uri: str | None = None
) -> LoadedModel:
    """The model logged at ``uri`` (``runs:/<id>``, ``runs:/<id>/model``, ``models:/<name>/<v>``
    or a local model folder), rebuilt on ``device``."""
    return load_bundle(download_model(uri, tracking_uri), device)


def load_bundle(folder: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild a model from its bundle folder (model_bundle.py)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    registry.load_plugins()
    description = yaml.safe_load((folder / DESCRIPTION).read_text())
    _check_plugins(description.get("plugins", {}))
    cfg = OmegaConf.create((folder / CONFIG).read_text())
    assert isinstance(cfg, DictConfig)
    preprocessor = None
    if cfg.get("preprocess") is not None:
        preprocessor = registry.build_from_config("preprocess", cfg.preprocess)
        if (folder / PREPROCESSOR).exists():
            preprocessor.load_state_dict(load_file(str(folder / PREPROCESSOR)))
    data = RecordedData(cfg.get("dataset"), preprocessor, description.get("data", {}))
    context = ModelContext(
        datamodule=data,
        pursuit=registry.build_from_config("pursuit", cfg.pursuit) if cfg.get("pursuit") else None,
        learner=registry.build_from_config("learner", cfg.learner) if cfg.get("learner") else None,
    )
    module: SparselandModule = registry.build_from_config("model", cfg.model, context)
    module.load_state_dict(load_file(str(folder / STATE)), strict=True)
    module = module.to(device).eval()
    if preprocessor is not None:
        preprocessor.load_state_dict({k: v.to(device) for k, v in preprocessor.state.items()})
    return LoadedModel(module, preprocessor, description, cfg)


def _check_plugins(plugins: dict[str, dict[str, str]]) -> None:
    for group, info in plugins.items():
        package = f"{info.get('distribution', 'unknown')}=={info.get('version', 'unknown')}"
        try:
            entry = registry.get(group, info["name"])
        except UnknownPluginError:
            raise MissingPluginError(
                f"this model needs the {group} plugin '{info['name']}' from the package "
                f"{package}, which is not installed here (pip install '{package}')"
            ) from None
        if entry.version != info.get("version"):
            log.warning(
                "%s plugin '%s' was %s when the model was trained; %s==%s is installed",
                group,
                info["name"],
                package,
                entry.distribution,
                entry.version,
            )
