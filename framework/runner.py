"""Run one job: validate, build, open the MLflow run, train through Lightning, evaluate, record.

Order matters for reliability: the config is validated and the data are loaded *before*
anything is written to MLflow, so a bad value or a missing file leaves no trace in the store.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from sparseland import console, convergence, distributed, registry
from sparseland.checkpoint_record import DescribeCheckpoint, describe_run
from sparseland.errors import SparselandError, TrackingUnavailableError
from sparseland.guards import DivergenceGuard
from sparseland.images import atoms_grid
from sparseland.interfaces import ModelContext, SparselandDataModule, SparselandModule, Task
from sparseland.metrics import RUN_METRICS, declaration_tags
from sparseland.spec import RunSpec, validate
from sparseland.threads import apply_threads
from sparseland.tracking import Tracker, flatten_config, open_store, resolve_tracking_uri
from sparseland.tracking.checkpoints import UploadingCheckpoint, is_run_id, restore_run
from sparseland.tracking.code_version import code_version
from sparseland.tracking.fingerprint import TAG as HASH_TAG
from sparseland.tracking.fingerprint import config_hash
from sparseland.tracking.journal import Journal
from sparseland.tracking.lightning_logger import TrackerLogger
from sparseland.tracking.model_logging import log_run_model
from sparseland.tracking.null import NullTracker
from sparseland.tracking.reuse import reuse_finished
from sparseland.tracking.run import is_outage
from sparseland.tracking.sweep import parent_file

log = logging.getLogger("sparseland")
_STRATEGIES = distributed.StatisticsDDPStrategy  # importing the module registers trainer=ddp's
RUN_ID_FILE = "mlflow_run_id.txt"
RUN_NAME_MAX = 250


@dataclass
class Job:
    run_dir: Path
    run_name: str
    parent_run_id: str | None
    in_sweep: bool


@dataclass
class Built:
    preprocessor: Any
    datamodule: SparselandDataModule
    model: SparselandModule
    task: Task


def run(cfg: DictConfig, run_dir: str | Path | None = None) -> dict[str, float]:
    """Run the job ``cfg`` (a composed Hydra config); return its ``test/*`` metrics."""
    spec = validate(cfg)
    threads = apply_threads(cfg.get("threads", "auto"))  # a parallel job's share of the cores
    job = _job_info(cfg, run_dir)
    resume = cfg.get("resume")
    if is_run_id(resume):  # resume=<run id>: the checkpoint comes from the tracking store
        resume = restore_run(cfg, resume, job.run_dir, RUN_ID_FILE)
    resume_dir = Path(resume).resolve() if resume else None
    if resume_dir is not None:
        _check_resumable(resume_dir)
        job.run_dir = resume_dir
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    built = _build(spec)  # data errors (missing file, patch larger than image) surface here
    if distributed.launched_rank() > 0:  # another process of a multi-node run: rank 0 records
        return _train_and_evaluate(cfg, built, job.run_dir, NullTracker())

    outputs = cfg.paths.outputs
    uri = resolve_tracking_uri(cfg.logger.tracking_uri, outputs)
    digest = config_hash(cfg)
    try:
        client, experiment_id = open_store(uri, cfg.logger.experiment, outputs)
    except Exception as exc:  # unreachable at the check, or lost right after it
        outage = isinstance(exc, TrackingUnavailableError) or is_outage(exc)
        if not (cfg.logger.offline and outage):
            raise
        client, experiment_id = None, ""
    code = code_version((g, c.name) for g, c in spec.configs.items())
    if client is not None and job.in_sweep and resume_dir is None and not cfg.get("force", False):
        params = flatten_config(cfg)
        try:
            reused = reuse_finished(
                client, experiment_id, digest, code, params, job.run_name, job.parent_run_id
            )
        except Exception as exc:
            if not (cfg.logger.offline and is_outage(exc)):
                raise
            reused = None  # the server went down: run the job and journal it
        if reused is not None:
            return reused
    tracker = _open_run(client, experiment_id, cfg, job, resume_dir, digest, uri)
    tracker.set_tags(code.tags())
    log.info("run %s in %s", tracker.run_id, job.run_dir)
    if resume_dir is None:  # a param cannot change; a resumed run keeps its first value
        tracker.log_params({"threads.used": str(threads)})
    try:
        metrics = _train_and_evaluate(cfg, built, job.run_dir, tracker)
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {exc}"[:4000]
        tracker.set_tags({"sparseland.failure": reason})
        tracker.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    tracker.end("FINISHED")
    if metrics:  # the process that evaluated (rank 0)
        print(console.summary_of(tracker, cfg.logger.experiment, metrics, not job.in_sweep))
    return metrics


def _build(spec: RunSpec) -> Built:
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
    return Built(preprocessor, datamodule, model, task)


def _train_and_evaluate(
    cfg: DictConfig, built: Built, run_dir: Path, tracker: Tracker
) -> dict[str, float]:
    trainer = _trainer(cfg, run_dir, tracker)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    start = time.perf_counter()
    with convergence.record() as training:
        trainer.fit(
            built.model,
            datamodule=built.datamodule,
            ckpt_path=str(checkpoint) if checkpoint.exists() else None,
        )
    train_time = time.perf_counter() - start
    if not trainer.is_global_zero:
        return {}
    model = built.model.eval()
    with torch.no_grad(), convergence.record() as evaluation:
        metrics = dict(built.task.run(model, built.datamodule, tracker))
    metrics["train_time_s"] = train_time
    metrics.update(evaluation.metrics())
    tracker.log_metrics(metrics, step=int(trainer.global_step))
    _record_declarations(built.task, metrics, tracker)
    _record_convergence(training, evaluation, tracker)
    _log_artifacts(model, built.preprocessor, tracker)
    if cfg.logger.get("log_model", True):
        with convergence.record():  # the input example's solve is no result: not reported
            log_run_model(tracker, cfg, model, built.datamodule, built.preprocessor)
    return metrics


def _record_declarations(task: Task, metrics: dict[str, float], tracker: Tracker) -> None:
    """Store what each logged metric measures (space, direction, unit) as run tags."""
    specs = (*task.declares, *RUN_METRICS)
    tracker.set_tags(declaration_tags(specs, metrics))
    undeclared = sorted(set(metrics) - {s.name for s in specs})
    if undeclared:
        log.warning(
            "task %s logs undeclared metrics %s: declare them in its `declares` "
            "(sparseland.metrics.MetricSpec) so that comparisons know their space and direction",
            type(task).__name__,
            ", ".join(undeclared),
        )


def _record_convergence(
    training: convergence.ConvergenceRecord,
    evaluation: convergence.ConvergenceRecord,
    tracker: Tracker,
) -> None:
    """Tag a run whose test metrics rest on unconverged solves; say so once."""
    if evaluation.unconverged:
        tracker.set_tags({convergence.UNCONVERGED_TAG: "true"})
    message = convergence.report(training, evaluation)
    if message:
        log.warning(message)


def _trainer(cfg: DictConfig, run_dir: Path, tracker: Tracker) -> L.Trainer:
    options = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert isinstance(options, dict)
    every = int(options.pop("checkpoint_every_n_steps", 0))
    options = {k: v for k, v in options.items() if v is not None}  # unset: Lightning's default
    checkpoint = UploadingCheckpoint(
        tracker,
        dirpath=run_dir / "checkpoints",
        save_last=True,
        save_top_k=0,
        every_n_train_steps=every or None,
        save_on_train_epoch_end=True,
    )
    return L.Trainer(
        **{str(k): v for k, v in options.items()},
        logger=TrackerLogger(tracker),
        callbacks=[
            checkpoint,
            DivergenceGuard(),
            DescribeCheckpoint(describe_run(cfg, provenance())),
        ],
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


def _open_run(
    client: Any,
    experiment_id: str,
    cfg: DictConfig,
    job: Job,
    resume_dir: Path | None,
    digest: str,
    uri: str,
) -> Tracker:
    """Create (or, resuming, reopen) the run; offline runs exist only in their journal."""
    job.run_dir.mkdir(parents=True, exist_ok=True)
    journal = Journal(job.run_dir)
    if resume_dir is not None:
        tracker = Tracker(client, (resume_dir / RUN_ID_FILE).read_text().strip(), journal)
        if client is not None:
            client.update_run(tracker.run_id, status="RUNNING")
        tracker.set_tags({"sparseland.resumed": datetime.now().isoformat(timespec="seconds")})
        return tracker
    tags = {"sparseland.run_dir": str(job.run_dir), HASH_TAG: digest, **provenance()}
    if job.parent_run_id:
        tags["mlflow.parentRunId"] = job.parent_run_id
    if client is None:
        log.warning(
            "tracking server %s unreachable: logger.offline=true, so this run is recorded "
            "in %s; upload it later with `sparseland-sync %s`",
            uri,
            journal.path,
            job.run_dir,
        )
        tracker = Tracker.create_offline(journal, uri, cfg.logger.experiment, job.run_name, tags)
    else:
        try:
            tracker = Tracker.create(
                client, experiment_id, run_name=job.run_name, tags=tags, journal=journal
            )
        except Exception as exc:  # the server went down between opening the store and now
            if not (cfg.logger.offline and is_outage(exc)):
                raise
            log.warning("tracking server %s lost (%s): recording to %s", uri, exc, journal.path)
            tracker = Tracker.create_offline(
                journal, uri, cfg.logger.experiment, job.run_name, tags
            )
    (job.run_dir / RUN_ID_FILE).write_text(tracker.run_id)
    tracker.log_params(flatten_config(cfg))
    tracker.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    return tracker


def _job_info(cfg: DictConfig, run_dir: str | Path | None) -> Job:
    """Run directory, run name and (inside a sweep) the parent run, from Hydra when it runs us."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    parent, in_sweep, name = None, False, cfg.logger.get("run_name")
    if HydraConfig.initialized():
        hc = HydraConfig.get()
        run_dir = run_dir or hc.runtime.output_dir
        if hc.mode == RunMode.MULTIRUN:
            in_sweep = True
            path = parent_file(hc.sweep.dir)
            parent = path.read_text().strip() if path.exists() else None
            name = name or (hc.job.override_dirname or f"job {hc.job.num}")
    if run_dir is None:
        stamp = datetime.now().strftime("%Y-%m-%d/%H-%M-%S-%f")
        run_dir = Path(cfg.paths.outputs) / "runs" / stamp
    name = name or "-".join(str(cfg[g].name) for g in ("model", "pursuit") if cfg.get(g))
    # MLflow's database column holds 250 characters (PostgreSQL refuses more; SQLite does not).
    name = name if len(name) <= RUN_NAME_MAX else name[: RUN_NAME_MAX - 3] + "..."
    return Job(Path(run_dir).resolve(), name, parent, in_sweep)


def _check_resumable(run_dir: Path) -> None:
    if not (run_dir / RUN_ID_FILE).exists():
        raise SparselandError(
            f"resume={run_dir}: not a Sparseland run directory (no {RUN_ID_FILE}); pass the "
            "run directory printed when the run started (outputs/runs/<date>/<time>)."
        )


def provenance() -> dict[str, str]:
    """Package version, git commit and the versions of the plugin packages, as run tags."""
    import importlib.metadata

    try:
        version = importlib.metadata.version("sparseland")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    tags = {"sparseland.version": version}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    tags["sparseland.git_commit"] = commit
    dists = {(e.distribution, e.version) for e in registry.entries()}
    tags["sparseland.plugin_packages"] = ", ".join(f"{d}=={v}" for d, v in sorted(dists))
    return tags
