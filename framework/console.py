"""What a run prints: a quiet console, a summary at the end, the sweep's parent and its compare
command.

Quieting only touches what our dependencies emit and we cannot fix at the call: MLflow's
database set-up lines, Lightning's advertisement for its cloud logger, a deprecation inside
Lightning's own use of torch. Our own warnings (convergence, divergence) are left alone.
"""

from __future__ import annotations

import logging
import os
import shlex
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# INFO lines of MLflow that say nothing about the run: creating and migrating the SQLite
# database, validating the logged model's input example.
QUIET_LOGGERS = ("mlflow.store.db.utils", "alembic.runtime.migration", "mlflow.pyfunc")
LIGHTNING_RANK_ZERO = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
)
ADVERTISEMENTS = ("💡 Tip:",)
# (message pattern, category, module that emits it): raised inside dependencies.
DEPENDENCY_WARNINGS = (
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning, ""),
    (r"The ``noload`` loader strategy is deprecated", Warning, "mlflow"),
)


class _DropAdvertisements(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(ADVERTISEMENTS)


def quiet() -> None:
    """Silence dependency chatter; idempotent, and it survives Hydra's logging set-up."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in LIGHTNING_RANK_ZERO:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropAdvertisements) for f in logger.filters):
            logger.addFilter(_DropAdvertisements())
    for message, category, module in DEPENDENCY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


def _format_value(value: float) -> str:
    return f"{value:.6g}"


def ui_command(uri: str) -> str:
    """The command that shows the store ``uri`` in a browser, bound to this machine only."""
    return f"mlflow ui --backend-store-uri {shlex.quote(uri)} --host 127.0.0.1"


def compare_command(parent_run_id: str, uri: str) -> str:
    """``sparseland-compare --parent <id>``, with the store named when it is not the default."""
    command = f"sparseland-compare --parent {parent_run_id}"
    default = os.environ.get("MLFLOW_TRACKING_URI") or (
        f"sqlite:///{Path('outputs').resolve() / 'mlflow.db'}"
    )
    return command if uri == default else f"{command} --tracking-uri {shlex.quote(uri)}"


def run_summary(
    metrics: Mapping[str, float],
    run_id: str,
    experiment: str,
    uri: str,
    artifacts: str | None,
    show_ui: bool = True,
) -> str:
    """A few lines that end a run: its test metrics, where it is recorded, how to look at it."""
    tests = {k: v for k, v in sorted(metrics.items()) if k.startswith("test/")}
    width = max((len(k) for k in tests), default=0)
    lines = ["", f"run {run_id} finished (experiment '{experiment}')"]
    lines += [f"  {k.ljust(width)}  {_format_value(v)}" for k, v in tests.items()]
    lines.append(f"  tracking store: {uri}")
    if artifacts:
        lines.append(f"  artifacts: {artifacts}")
    if show_ui:
        lines.append(f"  look at it: {ui_command(uri)}")
    return "\n".join(lines)


def sweep_banner(parent_run_id: str, experiment: str, uri: str, finished: bool) -> str:
    what = "finished" if finished else "started"
    lines = [
        "",
        f"sweep {what}: parent run {parent_run_id} (experiment '{experiment}')",
        f"  compare its jobs: {compare_command(parent_run_id, uri)}",
    ]
    if finished:
        lines.append(f"  look at it: {ui_command(uri)}")
    return "\n".join(lines)


def summary_of(tracker: Any, experiment: str, metrics: Mapping[str, float], show_ui: bool) -> str:
    """:func:`run_summary` of a finished run, its artifact location asked of the store."""
    artifacts: str | None = None
    if tracker.client is not None and not tracker.offline:
        try:
            artifacts = str(tracker.client.get_run(tracker.run_id).info.artifact_uri)
        except Exception:  # the summary never fails a finished run
            artifacts = None
    elif tracker.journal is not None:
        artifacts = f"{tracker.journal.path} (journal; upload with sparseland-sync)"
    return run_summary(metrics, tracker.run_id, experiment, tracker.uri, artifacts, show_ui)
