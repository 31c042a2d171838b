"""One MLflow run: params, metrics, tags and artifacts of a Sparseland job.

When the tracking server stops answering, the tracker switches to its journal (see
journal.py) and the run goes on; ``sparseland-sync`` uploads what was journaled.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from sparseland.tracking.journal import Journal
from sparseland.tracking.store import retry

log = logging.getLogger("sparseland")
BATCH = 100  # MLflow accepts at most 100 params per log_batch call


def flatten_config(cfg: DictConfig | dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"pursuit.lam": "0.1", ...}``: the params of a run."""
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    assert isinstance(data, dict)
    out: dict[str, str] = {}
    for key, value in data.items():
        name = prefix + str(key)
        if isinstance(value, dict):
            out.update(flatten_config(value, name + "."))
        else:
            out[name] = json.dumps(value) if isinstance(value, list | tuple) else str(value)
    return out


def is_outage(exc: BaseException) -> bool:
    """A failure to reach the server (as opposed to a bad request)."""
    text = f"{type(exc).__name__} {exc}".lower()
    return any(
        s in text
        for s in (
            "connection",
            "max retries",
            "timed out",
            "unreachable",
            "refused",
            "temporarily unavailable",
        )
    )


class Tracker:
    """Thin wrapper over ``MlflowClient`` bound to one run; writes are retried on SQLite and
    journaled when the server is down (only when a journal is given)."""

    def __init__(
        self, client: MlflowClient | None, run_id: str, journal: Journal | None = None
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.journal = journal
        self.offline = client is None
        self.uri = str(
            getattr(client, "tracking_uri", "")
            or getattr(getattr(client, "_tracking_client", None), "tracking_uri", "")
        )

    @classmethod
    def create(
        cls,
        client: MlflowClient,
        experiment_id: str,
        run_name: str | None = None,
        tags: dict[str, str] | None = None,
        journal: Journal | None = None,
    ) -> Tracker:
        run = retry(lambda: client.create_run(experiment_id, run_name=run_name, tags=tags or {}))
        return cls(client, run.info.run_id, journal)

    @classmethod
    def create_offline(
        cls, journal: Journal, uri: str, experiment: str, run_name: str, tags: dict[str, str]
    ) -> Tracker:
        """A run that exists only in its journal until ``sparseland-sync`` creates it."""
        journal.append("create_run", uri=uri, experiment=experiment, run_name=run_name, tags=tags)
        return cls(None, "offline", journal)

    def _deliver(self, action: Callable[[], Any], op: str, **payload: Any) -> None:
        if not self.offline:
            try:
                retry(action)
                return
            except Exception as exc:
                if self.journal is None or not is_outage(exc):
                    raise
                self.offline = True
                self.journal.append("target", uri=self.uri)
                log.warning(
                    "tracking server unreachable (%s); recording to %s. Upload it later with "
                    "`sparseland-sync %s`.",
                    exc,
                    self.journal.path,
                    self.journal.path.parent,
                )
        assert self.journal is not None
        self.journal.append(op, **payload)

    def log_params(self, params: dict[str, str]) -> None:
        items = [(k, v[:6000]) for k, v in params.items()]
        for i in range(0, len(items), BATCH):
            chunk = items[i : i + BATCH]
            self._deliver(
                lambda chunk=chunk: self.client.log_batch(  # type: ignore[misc,union-attr]
                    self.run_id, params=[Param(k, v) for k, v in chunk]
                ),
                "params",
                params=dict(chunk),
            )

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        values = {k: float(v) for k, v in metrics.items()}
        self._deliver(
            lambda: self.client.log_batch(  # type: ignore[union-attr]
                self.run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()]
            ),
            "metrics",
            metrics=values,
            step=step,
            timestamp=now,
        )

    def set_tags(self, tags: dict[str, str]) -> None:
        values = {k: str(v) for k, v in tags.items()}
        self._deliver(
            lambda: self.client.log_batch(  # type: ignore[union-attr]
                self.run_id, tags=[RunTag(k, v) for k, v in values.items()]
            ),
            "tags",
            tags=values,
        )

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._deliver(
            lambda: self.client.log_artifact(self.run_id, str(path), artifact_path),  # type: ignore[union-attr]
            "artifact",
            path=str(path),
            artifact_path=artifact_path,
        )

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
        self._deliver(
            lambda: self.client.set_terminated(self.run_id, status),  # type: ignore[union-attr]
            "end",
            status=status,
        )
