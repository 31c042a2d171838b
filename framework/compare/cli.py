"""``sparseland-compare``: one table and a few plots from the runs of an experiment or a sweep.

    sparseland-compare --parent <sweep run id> --metrics test/psnr,test/l0 --x pursuit.lam
    sparseland-compare --experiment sparseland --group-by model.name,pursuit.name

Writes ``table.md``, ``table.csv`` (``paired.csv`` with paired differences) and PNGs to
``--out`` (default ``<outputs>/compare/<experiment or parent run id>``), after removing the
files an earlier call wrote there, and logs them as artifacts (under ``compare/``) of the
parent run, or of a new run tagged ``sparseland.kind=compare`` in the experiment when no
parent was given.

The table shows each metric's direction (↑ higher / ↓ lower is better, from the run's metric
declarations), the best mean per column in bold, and flags rows with unconverged runs; it
refuses metrics that the runs declare in different spaces. For two rows swept over the same
seeds (or any row against ``--baseline``), it reports the paired difference per metric with a
95 % t confidence interval and a sign test.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.tracking import MlflowClient

from sparseland.compare import stats
from sparseland.compare.plots import (
    atoms_side_by_side,
    file_name,
    metric_vs_param,
    objective_vs_time,
)
from sparseland.compare.query import (
    KIND_TAG,
    CompareError,
    RunRecord,
    experiment_id,
    runs_of_experiment,
    runs_of_parent,
)
from sparseland.compare.table import (
    Comparison,
    compare,
    default_group_by,
    to_markdown,
    varying_params,
    write_csv,
)
from sparseland.errors import SparselandError

ARTIFACT_DIR = "compare"


@dataclass
class CompareResult:
    comparison: Comparison
    out: Path
    files: list[Path] = field(default_factory=list)
    logged_to: str | None = None  # the run the files were logged to
    differences: list[stats.PairedDifference] = field(default_factory=list)


def _names(values: Sequence[str] | None) -> list[str] | None:
    """``["a,b", "c"]`` → ``["a", "b", "c"]`` (commas or spaces both separate)."""
    if values is None:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "compare"


def load_runs(
    client: MlflowClient,
    experiment: str | None = None,
    parent: str | None = None,
    include_unfinished: bool = False,
) -> list[RunRecord]:
    statuses = None if include_unfinished else ("FINISHED",)
    if (experiment is None) == (parent is None):
        raise CompareError("give exactly one of --experiment NAME or --parent RUN_ID.")
    if parent is not None:
        return runs_of_parent(client, parent, statuses)
    assert experiment is not None
    return runs_of_experiment(client, experiment, statuses)


def run_compare(
    client: MlflowClient,
    *,
    experiment: str | None = None,
    parent: str | None = None,
    metrics: Sequence[str] | None = None,
    group_by: Sequence[str] | None = None,
    x: str | None = None,
    out: str | Path | None = None,
    outputs: str | Path = "outputs",
    include_unfinished: bool = False,
    log_artifacts: bool = True,
    baseline: str | None = None,
    allow_mixed_spaces: bool = False,
) -> CompareResult:
    """Build the comparison, write its files (into a folder cleared of the files of the
    previous call), log them back to MLflow."""
    runs = load_runs(client, experiment, parent, include_unfinished)
    group_keys = list(group_by) if group_by is not None else default_group_by(runs)
    if (
        x is not None
        and x not in group_keys
        and (group_by is not None or x in varying_params(runs))
    ):
        group_keys.append(x)
    comparison = compare(runs, metrics, group_keys, allow_mixed_spaces)
    comparison.warnings.extend(stats.identical_seeds(comparison))
    if x is not None and x not in comparison.group_by:
        raise CompareError(
            f"--x {x}: that param does not vary between the runs; params that vary: "
            f"{', '.join(comparison.group_by) or '(none)'}."
        )
    name = _safe(parent if parent is not None else str(experiment))
    target = Path(out) if out is not None else Path(outputs) / "compare" / name
    clear_previous(target)

    title = f"parent run {parent}" if parent is not None else f"experiment {experiment}"
    differences = (
        stats.paired_differences(comparison, baseline)
        if baseline is not None or len(comparison.groups) == 2
        else []
    )
    table_md = target / "table.md"
    report = to_markdown(comparison, title=f"Comparison: {title}")
    if differences:
        report += "\n" + stats.to_markdown(differences, comparison)
    elif len(comparison.groups) > 2:
        report += "\nPaired differences over seeds: pass --baseline ROW (a row's label).\n"
    table_md.write_text(report)
    result = CompareResult(
        comparison,
        target,
        [table_md, write_csv(comparison, target / "table.csv")],
        differences=differences,
    )
    if differences:
        stats.write_csv(differences, str(target / "paired.csv"))
        result.files.append(target / "paired.csv")
    if x is not None:
        for metric in comparison.metrics:
            result.files.append(
                metric_vs_param(comparison, metric, x, target / file_name(metric, "vs", x))
            )
    for made in (
        objective_vs_time(client, comparison, target / "objective_vs_time.png"),
        atoms_side_by_side(client, comparison, target / "atoms.png"),
    ):
        if made is not None:
            result.files.append(made)
    (target / MANIFEST).write_text("".join(f"{p.name}\n" for p in result.files))
    if log_artifacts:
        result.logged_to = _log(client, result.files, experiment, parent)
    return result


MANIFEST = ".sparseland-compare"
_OWN_FILES = (
    "table.md",
    "table.csv",
    "paired.csv",
    "objective_vs_time.png",
    "atoms.png",
    "*_vs_*.png",
)


def clear_previous(target: Path) -> None:
    """Create ``target``, or remove the files an earlier comparison wrote there (listed in its
    manifest; without one, the names this command writes): no stale plot outlives its table."""
    target.mkdir(parents=True, exist_ok=True)
    manifest = target / MANIFEST
    if manifest.exists():
        stale = [target / n for n in manifest.read_text().split() if "/" not in n]
    else:
        stale = [p for pattern in _OWN_FILES for p in target.glob(pattern)]
    for path in stale:
        if path.is_file():
            path.unlink()


def _log(
    client: MlflowClient, files: list[Path], experiment: str | None, parent: str | None
) -> str:
    from sparseland.tracking.run import Tracker

    if parent is not None:
        tracker = Tracker(client, parent)
    else:
        assert experiment is not None
        tracker = Tracker.create(
            client,
            experiment_id(client, experiment),
            run_name="compare",
            tags={KIND_TAG: "compare"},
        )
    for path in files:
        tracker.log_artifact(path, ARTIFACT_DIR)
    if parent is None:
        tracker.end("FINISHED")
    return tracker.run_id


def _check_store_exists(uri: str) -> None:
    """A SQLite path that is not there is a wrong --outputs, not an empty store to create."""
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
        if not path.exists():
            raise CompareError(
                f"no MLflow store at {path}: pass the --outputs the runs were made with "
                "(their paths.outputs) or --tracking-uri."
            )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sparseland-compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--experiment", help="compare the runs of this MLflow experiment")
    which.add_argument("--parent", metavar="RUN_ID", help="compare the child runs of this sweep")
    p.add_argument(
        "--metrics",
        nargs="+",
        metavar="M",
        help="metrics or patterns, comma- or space-separated (default: test/*)",
    )
    p.add_argument(
        "--group-by",
        nargs="+",
        metavar="PARAM",
        help="params that define a row (default: every param that varies, seed "
        "excluded: the mean and spread are over seeds)",
    )
    p.add_argument("--x", metavar="PARAM", help="plot each metric against this swept param")
    p.add_argument("--out", help="output folder (default: <outputs>/compare/<name>)")
    p.add_argument(
        "--outputs", default="outputs", help="the app's paths.outputs (default: outputs)"
    )
    p.add_argument(
        "--tracking-uri",
        help="MLflow store (default: as the app: $MLFLOW_TRACKING_URI, else "
        "sqlite:///<outputs>/mlflow.db)",
    )
    p.add_argument(
        "--include-unfinished",
        action="store_true",
        help="also compare FAILED / RUNNING / KILLED runs (default: FINISHED only)",
    )
    p.add_argument(
        "--baseline",
        metavar="ROW",
        help="paired differences over seeds of every row against this row (its label as in the "
        "plots, e.g. 'fista lam=0.1'); default: when there are two rows, the first",
    )
    p.add_argument(
        "--allow-mixed-spaces",
        action="store_true",
        help="tabulate a metric that runs declare in different spaces (default: refuse)",
    )
    p.add_argument("--no-log", action="store_true", help="do not log the files back to MLflow")
    return p


def main(argv: list[str] | None = None) -> None:
    from sparseland.tracking.store import resolve_tracking_uri

    args = parser().parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = args.tracking_uri or resolve_tracking_uri(None, args.outputs)
    try:
        _check_store_exists(uri)
        result = run_compare(
            MlflowClient(tracking_uri=uri),
            experiment=args.experiment,
            parent=args.parent,
            metrics=_names(args.metrics),
            group_by=_names(args.group_by),
            x=args.x,
            out=args.out,
            outputs=args.outputs,
            include_unfinished=args.include_unfinished,
            log_artifacts=not args.no_log,
            baseline=args.baseline,
            allow_mixed_spaces=args.allow_mixed_spaces,
        )
    except SparselandError as exc:
        print(f"sparseland-compare: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print((result.out / "table.md").read_text())
    for warning in result.comparison.warnings:
        print(f"sparseland-compare: warning: {warning}", file=sys.stderr)
    print(f"wrote {', '.join(p.name for p in result.files)} to {result.out}")
    if result.logged_to:
        print(f"logged them to MLflow run {result.logged_to} under {ARTIFACT_DIR}/")


if __name__ == "__main__":
    main()
