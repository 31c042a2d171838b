"""Run one job: validate, open the MLflow run, train through Lightning, evaluate, record."""

from __future__ import annotations

import logging
import subprocess
import tempfile
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from framework import registry
from framework.errors import SparselandError
from framework.images import atoms_grid
from framework.interfaces import ModelContext
from framework.spec import RunSpec, validate
from framework.tracking import Tracker, flatten_config, open_store, resolve_tracking_uri
from framework.tracking.lightning_logger import TrackerLogger
from framework.tracking.sweep import parent_file

log = logging.getLogger("sparseland")
RUN_ID_FILE = "mlflow_run_id.txt"


def run(cfg: DictConfig, run_dir: str | Path | None = None) -> dict[str, float]:
    """Run the job ``cfg`` (a composed Hydra config); return its ``test/*`` metrics."""
    spec = validate(cfg)  # config errors surface here, before anything is written
    job = _job_info(cfg, run_dir)
    resume_dir = Path(cfg.resume).resolve() if cfg.get("resume") else None
    if resume_dir is not None:
        _check_resumable(resume_dir)
        job["run_dir"] = resume_dir
    tracker = _open_run(cfg, job, resume_dir)
    try:
        metrics = _train_and_evaluate(cfg, spec, job["run_dir"], tracker)
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {exc}"[:4000]
        tracker.set_tags({"sparseland.failure": reason})
        tracker.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    tracker.end("FINISHED")
    return metrics


def _train_and_evaluate(
    cfg: DictConfig, spec: RunSpec, run_dir: Path, tracker: Tracker
) -> dict[str, float]:
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    preprocessor = (
        registry.build_from_config("preprocess", spec["preprocess"]) if spec["preprocess"] else None
    )
    datamodule = registry.build_from_config("dataset", spec["dataset"], preprocessor)
    datamodule.setup("fit")
    context = ModelContext(
        datamodule=datamodule,
        pursuit=registry.build_from_config("pursuit", spec["pursuit"]) if spec["pursuit"] else None,
        learner=registry.build_from_config("learner", spec["learner"]) if spec["learner"] else None,
    )
    model = registry.build_from_config("model", spec["model"], context)
    task = registry.build_from_config("task", spec["task"])

    trainer = _trainer(cfg, run_dir, tracker)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=str(checkpoint) if checkpoint.exists() else None)
    train_time = time.perf_counter() - start
    if not trainer.is_global_zero:
        return {}

    model.eval()
    with torch.no_grad():
        metrics = dict(task.run(model, datamodule, tracker))
    metrics["train_time_s"] = train_time
    tracker.log_metrics(metrics, step=int(trainer.global_step))
    _log_artifacts(model, preprocessor, tracker)
    return metrics


def _trainer(cfg: DictConfig, run_dir: Path, tracker: Tracker) -> L.Trainer:
    from lightning.pytorch.callbacks import ModelCheckpoint

    options = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert isinstance(options, dict)
    every = int(options.pop("checkpoint_every_n_steps", 0))
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        save_last=True,
        save_top_k=0,
        every_n_train_steps=every or None,
        save_on_train_epoch_end=True,
    )
    return L.Trainer(
        **options,
        logger=TrackerLogger(tracker),
        callbacks=[checkpoint],
        default_root_dir=str(run_dir),
        enable_model_summary=False,
    )


def _log_artifacts(model: Any, preprocessor: Any, tracker: Tracker) -> None:
    atoms = model.atoms()
    if atoms is not None:
        tracker.log_image(atoms_grid(atoms), "atoms.png")
    if preprocessor is not None and preprocessor.state:
        from safetensors.torch import save_file

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "preprocessor.safetensors"
            save_file(preprocessor.state_dict(), str(path))
            tracker.log_artifact(path)


# ----------------------------------------------------------------------------- MLflow run


def _open_run(cfg: DictConfig, job: dict[str, Any], resume_dir: Path | None) -> Tracker:
    outputs = cfg.paths.outputs
    uri = resolve_tracking_uri(cfg.logger.tracking_uri, outputs)
    client, experiment_id = open_store(uri, cfg.logger.experiment, outputs)
    run_dir: Path = job["run_dir"]
    run_dir.mkdir(parents=True, exist_ok=True)
    if resume_dir is not None:
        tracker = Tracker(client, (resume_dir / RUN_ID_FILE).read_text().strip())
        client.update_run(tracker.run_id, status="RUNNING")
        tracker.set_tags({"sparseland.resumed": datetime.now().isoformat(timespec="seconds")})
        return tracker
    tags = {"sparseland.run_dir": str(run_dir), **provenance()}
    if job["parent_run_id"]:
        tags["mlflow.parentRunId"] = job["parent_run_id"]
    tracker = Tracker.create(client, experiment_id, run_name=job["run_name"], tags=tags)
    (run_dir / RUN_ID_FILE).write_text(tracker.run_id)
    tracker.log_params(flatten_config(cfg))
    tracker.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    return tracker


def _job_info(cfg: DictConfig, run_dir: str | Path | None) -> dict[str, Any]:
    """Run directory, run name and (inside a sweep) the parent run, from Hydra when it runs us."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    parent, name = None, cfg.logger.get("run_name")
    if run_dir is None and HydraConfig.initialized():
        hc = HydraConfig.get()
        run_dir = hc.runtime.output_dir
        if hc.mode == RunMode.MULTIRUN:
            path = parent_file(hc.sweep.dir)
            parent = path.read_text().strip() if path.exists() else None
            name = name or (hc.job.override_dirname or f"job {hc.job.num}")
    if run_dir is None:
        stamp = datetime.now().strftime("%Y-%m-%d/%H-%M-%S-%f")
        run_dir = Path(cfg.paths.outputs) / "runs" / stamp
    name = name or f"{cfg.model.name}-{cfg.get('pursuit', {}).get('name', '')}".strip("-")
    return {"run_dir": Path(run_dir).resolve(), "parent_run_id": parent, "run_name": name}


def _check_resumable(run_dir: Path) -> None:
    if not (run_dir / RUN_ID_FILE).exists():
        raise SparselandError(
            f"resume={run_dir}: not a Sparseland run directory (no {RUN_ID_FILE}); pass the "
            "run directory printed when the run started (outputs/runs/<date>/<time>)."
        )


def provenance() -> dict[str, str]:
    """Package version, git commit and the versions of the plugin packages, as run tags."""
    tags = {"sparseland.version": _version("sparseland")}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        tags["sparseland.git_commit"] = commit
    except (OSError, subprocess.SubprocessError):
        tags["sparseland.git_commit"] = "unknown"
    dists = {(e.distribution, e.version) for e in registry.entries()}
    tags["sparseland.plugin_packages"] = ", ".join(f"{d}=={v}" for d, v in sorted(dists))
    return tags


def _version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def spec_as_dict(spec: RunSpec) -> dict[str, Any]:
    return {k: asdict(v) for k, v in spec.configs.items()}
