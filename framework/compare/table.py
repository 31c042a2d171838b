"""Group runs by method and parameters; mean and spread of each metric over seeds.

The spread is the sample standard deviation (ddof = 1) over the runs of a group, i.e. over
its seeds; a group of one run has no spread (NaN in the CSV, left out of the markdown).
"""

from __future__ import annotations

import csv
import fnmatch
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sparseland.compare.query import CompareError, RunRecord

SEED_PARAM = "seed"
# Params that say where or how a run was recorded, never what was run.
BOOKKEEPING_PARAMS = ("paths.*", "logger.*", "resume", "hydra.*", "trainer.enable_progress_bar")
DEFAULT_METRICS = ("test/*",)


def sort_key(value: str) -> tuple[int, float, str]:
    """Numbers in numeric order before words in alphabetical order."""
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def _ignored(name: str, extra: Iterable[str] = ()) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in (*BOOKKEEPING_PARAMS, SEED_PARAM, *extra))


def varying_params(runs: Sequence[RunRecord], ignore: Iterable[str] = ()) -> list[str]:
    """Params whose value differs between runs (seed and bookkeeping left out).

    Plugin names (``*.name``) come first, so the default grouping reads "method, then knobs".
    """
    ignore = tuple(ignore)
    keys = {k for r in runs for k in r.params if not _ignored(k, ignore)}
    varying = [k for k in keys if len({r.params.get(k) for r in runs}) > 1]
    return sorted(varying, key=lambda k: (not k.endswith(".name"), k))


def default_group_by(runs: Sequence[RunRecord]) -> list[str]:
    """The params that vary, less those a plugin's name already implies.

    ``pursuit.max_iter`` differs between ISTA and FISTA only because their defaults differ:
    when every run with the same ``pursuit.name`` has the same ``pursuit.max_iter``, it adds
    no row and is left out.
    """
    keys = varying_params(runs)
    kept = []
    for key in keys:
        group = key.rsplit(".", 1)[0] + ".name" if "." in key else ""
        if not key.endswith(".name") and group in keys:
            implied: dict[str | None, set[str | None]] = {}
            for r in runs:
                implied.setdefault(r.params.get(group), set()).add(r.params.get(key))
            if all(len(v) == 1 for v in implied.values()):
                continue
        kept.append(key)
    return kept


def select_metrics(runs: Sequence[RunRecord], requested: Sequence[str] | None) -> list[str]:
    """The metrics to tabulate: names or shell patterns (``test/*``), in the order asked."""
    available = sorted({m for r in runs for m in r.metrics})
    chosen: list[str] = []
    for pattern in requested or DEFAULT_METRICS:
        matches = [m for m in available if fnmatch.fnmatchcase(m, pattern)]
        if not matches:
            raise CompareError(
                f"no run logged a metric matching '{pattern}'. Metrics logged: "
                f"{', '.join(available) or '(none)'}."
            )
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


@dataclass
class Group:
    """The runs that share the values of the group-by params (normally: the seeds of a setting)."""

    key: tuple[str, ...]
    runs: list[RunRecord] = field(default_factory=list)

    def values(self, metric: str) -> list[float]:
        return [r.metrics[metric] for r in self.runs if metric in r.metrics]

    def mean(self, metric: str) -> float:
        values = self.values(metric)
        return statistics.fmean(values) if values else math.nan

    def spread(self, metric: str) -> float:
        values = self.values(metric)
        return statistics.stdev(values) if len(values) > 1 else math.nan

    @property
    def n_reused(self) -> int:
        """Runs of the group that a sweep reused from an earlier one (same config and code)."""
        return sum(r.reused_from is not None for r in self.runs)

    @property
    def seeds(self) -> list[str]:
        return sorted({r.params.get(SEED_PARAM, "?") for r in self.runs}, key=sort_key)


@dataclass
class Comparison:
    group_by: list[str]
    metrics: list[str]
    groups: list[Group]
    #: Params (besides the seed) whose values differ inside some group: they were averaged over.
    pooled: list[str] = field(default_factory=list)

    @property
    def n_runs(self) -> int:
        return sum(len(g.runs) for g in self.groups)


def compare(
    runs: Sequence[RunRecord],
    metrics: Sequence[str] | None = None,
    group_by: Sequence[str] | None = None,
) -> Comparison:
    """Group ``runs`` by ``group_by`` (default: :func:`default_group_by`; never the seed)."""
    if not runs:
        raise CompareError(
            "no runs to compare: none FINISHED in that experiment or under that parent "
            "(pass --include-unfinished to see the others)."
        )
    chosen = select_metrics(runs, metrics)
    keys = list(group_by) if group_by is not None else default_group_by(runs)
    known = {k for r in runs for k in r.params}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise CompareError(
            f"--group-by {unknown[0]}: no run has that param. Params that vary: "
            f"{', '.join(default_group_by(runs)) or '(none)'}."
        )
    table: dict[tuple[str, ...], Group] = {}
    for run in runs:
        key = tuple(run.params.get(k, "") for k in keys)
        table.setdefault(key, Group(key)).runs.append(run)
    groups = sorted(table.values(), key=lambda g: [sort_key(v) for v in g.key])
    pooled = sorted({p for g in groups for p in varying_params(g.runs, ignore=keys)} - set(keys))
    return Comparison(keys, chosen, groups, pooled)


def format_cell(mean: float, spread: float) -> str:
    if math.isnan(mean):
        return "–"
    if math.isnan(spread):
        return f"{mean:.4g}"
    return f"{mean:.4g} ± {spread:.2g}"


def to_markdown(comparison: Comparison, title: str = "") -> str:
    head = [*comparison.group_by, "n", *comparison.metrics]
    lines = []
    if title:
        lines += [f"# {title}", ""]
    lines += [
        f"{comparison.n_runs} runs in {len(comparison.groups)} groups; each cell is the mean ± "
        "sample standard deviation over the runs (seeds) of its group; n is their number.",
        "",
    ]
    if comparison.pooled:
        lines += [f"Averaged over differing params: {', '.join(comparison.pooled)}.", ""]
    if any(g.n_reused for g in comparison.groups):
        lines += [
            "reused: results of earlier runs with the same config and code, which this sweep "
            "did not run again (tag sparseland.reused_from names each).",
            "",
        ]
    lines.append("| " + " | ".join(head) + " |")
    lines.append(
        "|"
        + "|".join("---" if i < len(comparison.group_by) else "---:" for i in range(len(head)))
        + "|"
    )
    for g in comparison.groups:
        reused = f" ({g.n_reused} reused)" if g.n_reused else ""
        cells = [*(v or "—" for v in g.key), f"{len(g.runs)}{reused}"]
        cells += [format_cell(g.mean(m), g.spread(m)) for m in comparison.metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_rows(comparison: Comparison) -> list[dict[str, str | float | int]]:
    rows: list[dict[str, str | float | int]] = []
    for g in comparison.groups:
        row: dict[str, str | float | int] = dict(zip(comparison.group_by, g.key))
        row["n_runs"] = len(g.runs)
        row["seeds"] = ";".join(g.seeds)
        row["reused"] = g.n_reused
        for m in comparison.metrics:
            row[f"{m}:mean"] = g.mean(m)
            row[f"{m}:std"] = g.spread(m)
            row[f"{m}:n"] = len(g.values(m))
        row["run_ids"] = ";".join(r.run_id for r in g.runs)
        rows.append(row)
    return rows


def write_csv(comparison: Comparison, path: str | Path) -> Path:
    rows = csv_rows(comparison)
    path = Path(path)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path
