"""A trained model as plain files: what is logged to MLflow and what ``sparseland.load`` reads.

A bundle is a folder of
    state.safetensors         the model's ``state_dict`` (tensors only)
    preprocessor.safetensors  the fitted preprocessor's state, when it has one
    config.yaml               the resolved run config
    description.yaml          what the model needs of its data (signal shape, patch shape,
                              classes, noise level), its methods and the plugin packages used
Nothing is unpickled on load: tensors come from safetensors and the rest is YAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from sparseland import registry
from sparseland.interfaces import SparselandDataModule, SparselandModule
from sparseland.interfaces.contracts import Classifier, Denoiser, NoisyImage, PatchGeometry

STATE = "state.safetensors"
PREPROCESSOR = "preprocessor.safetensors"
CONFIG = "config.yaml"
DESCRIPTION = "description.yaml"
BUILT_GROUPS = ("preprocess", "pursuit", "learner", "model")
#: The method a served model answers with by default, after the task it was trained for.
DEFAULT_METHOD = {"denoise": "denoise", "classify": "predict"}


def methods_of(module: SparselandModule) -> list[str]:
    """The natural methods a model offers: encode/decode, denoise, predict."""
    found = []
    if type(module).encode is not SparselandModule.encode:
        found.append("encode")
    if type(module).decode is not SparselandModule.decode:
        found.append("decode")
    if isinstance(module, Denoiser):
        found.append("denoise")
    if isinstance(module, Classifier):
        found.append("predict")
    return found


def describe_data(datamodule: SparselandDataModule) -> dict[str, Any]:
    """What a model's constructor reads from its datamodule, without the data themselves."""
    sample: list[int] = list(datamodule.signal_shape or ())
    if not sample:
        batch = next(iter(datamodule.train_dataloader()))
        sample = list(batch["x"].shape[1:])
    patch = datamodule.patch_shape if isinstance(datamodule, PatchGeometry) else None
    sigma = datamodule.sigma if isinstance(datamodule, NoisyImage) else None
    return {
        "signal_shape": [int(s) for s in datamodule.signal_shape or ()],
        "sample_shape": [int(s) for s in sample],
        "patch_shape": None if patch is None else [int(s) for s in patch],
        "n_classes": int(datamodule.n_classes or 0),
        "has_labels": bool(datamodule.has_labels),
        "signal_kind": str(datamodule.signal_kind),
        "sigma": None if sigma is None else float(sigma),
    }


def plugin_versions(cfg: DictConfig) -> dict[str, dict[str, str]]:
    """For every plugin the model is rebuilt from: its name, package and version."""
    out = {}
    # as in checkpoint_record.describe_run; the bundle keeps what rebuilds the model
    for group in BUILT_GROUPS:
        node = cfg.get(group)
        if node is None:
            continue
        entry = registry.get(group, str(node.name))
        out[group] = {
            "name": entry.name,
            "distribution": entry.distribution,
            "version": entry.version,
        }
    return out


def write_bundle(
    folder: Path,
    cfg: DictConfig,
    model: SparselandModule,
    datamodule: SparselandDataModule,
    preprocessor: Any,
) -> dict[str, Any]:
    """Write the bundle of a trained ``model`` into ``folder``; return its description."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(folder / STATE))
    if preprocessor is not None and preprocessor.state:
        save_file(preprocessor.state_dict(), str(folder / PREPROCESSOR))
    (folder / CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    methods = methods_of(model)
    task = cfg.get("task")
    default = DEFAULT_METHOD.get(str(task.name) if task is not None else "", "encode")
    if default not in methods:
        default = methods[0] if methods else "encode"
    description = {
        "model": str(cfg.model.name),
        "methods": methods,
        "default_method": default,
        "data": describe_data(datamodule),
        "plugins": plugin_versions(cfg),
    }
    (folder / DESCRIPTION).write_text(yaml.safe_dump(description, sort_keys=False))
    return description
