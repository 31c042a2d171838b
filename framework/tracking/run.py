"""One MLflow run: params, metrics, tags and artifacts of a Sparseland job."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from framework.tracking.store import retry

BATCH = 100  # MLflow accepts at most 100 params per log_batch call


def flatten_config(cfg: DictConfig | dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"pursuit.lam": "0.1", ...}``: the params of a run."""
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    out: dict[str, str] = {}
    for key, value in (data or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_config(value, name + "."))
        else:
            out[name] = json.dumps(value) if isinstance(value, list | tuple) else str(value)
    return out


class Tracker:
    """Thin wrapper over ``MlflowClient`` bound to one run; every write is retried on SQLite."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    @classmethod
    def create(
        cls,
        client: MlflowClient,
        experiment_id: str,
        run_name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Tracker:
        run = retry(lambda: client.create_run(experiment_id, run_name=run_name, tags=tags or {}))
        return cls(client, run.info.run_id)

    def log_params(self, params: dict[str, str]) -> None:
        existing = self.client.get_run(self.run_id).data.params
        items = [Param(k, v[:6000]) for k, v in params.items() if k not in existing]
        for i in range(0, len(items), BATCH):
            chunk = items[i : i + BATCH]
            retry(lambda chunk=chunk: self.client.log_batch(self.run_id, params=chunk))  # type: ignore[misc]

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        for i in range(0, len(items), 1000):
            chunk = items[i : i + 1000]
            retry(lambda chunk=chunk: self.client.log_batch(self.run_id, metrics=chunk))  # type: ignore[misc]

    def set_tags(self, tags: dict[str, str]) -> None:
        items = [RunTag(k, str(v)) for k, v in tags.items()]
        retry(lambda: self.client.log_batch(self.run_id, tags=items))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        retry(lambda: self.client.log_artifact(self.run_id, str(path), artifact_path))

    def log_text(self, text: str, name: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / Path(name).name
            target.write_text(text)
            parent = str(Path(name).parent)
            self.log_artifact(target, None if parent == "." else parent)

    def log_image(self, image: np.ndarray, name: str) -> None:
        """``image``: (h, w) or (h, w, 3), float in [0, 1] or uint8; saved as PNG."""
        from PIL import Image

        if image.dtype != np.uint8:
            image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / Path(name).name
            Image.fromarray(image).save(target)
            parent = str(Path(name).parent)
            self.log_artifact(target, None if parent == "." else parent)

    def end(self, status: str = "FINISHED") -> None:
        retry(lambda: self.client.set_terminated(self.run_id, status))
