"""Group runs by method and parameters; mean and spread of each metric over seeds.

The spread is the sample standard deviation (ddof = 1) over the runs of a group, i.e. over
its seeds; a group of one run has no spread (NaN in the CSV, left out of the markdown).

Each metric's declaration (space, direction, unit; tags ``sparseland.metric.*``) gives the
arrow beside its column and the best mean, in bold; runs that declare one metric in different
spaces are refused (their values do not measure the same thing). Groups with runs tagged
``sparseland.unconverged`` are marked.
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
from sparseland.convergence import UNCONVERGED_TAG
from sparseland.metrics import MetricSpec, declarations

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


def label(keys: Sequence[str], values: Sequence[str]) -> str:
    """``("model.name", "pursuit.lam"), ("dictionary", "0.1")`` → ``"dictionary lam=0.1"``."""
    parts = [
        v if k.endswith(".name") else f"{k.rsplit('.', 1)[-1]}={v}" for k, v in zip(keys, values)
    ]
    return " ".join(parts) or "all runs"


def metric_specs(
    runs: Sequence[RunRecord], metrics: Sequence[str], allow_mixed: bool = False
) -> tuple[dict[str, MetricSpec], list[str]]:
    """The declaration of each metric that its runs agree on, and warnings.

    Runs that declare a metric in different spaces (or directions) are refused with a
    :class:`CompareError` naming them, or, with ``allow_mixed``, the metric gets no
    declaration and a warning.
    """
    specs: dict[str, MetricSpec] = {}
    warnings: list[str] = []
    declared = [(r, declarations(r.tags)) for r in runs]
    for metric in metrics:
        seen: dict[tuple[str, str], list[str]] = {}
        undeclared = 0
        for run, specs_of_run in declared:
            spec = specs_of_run.get(metric)
            if spec is not None and metric in run.metrics:
                seen.setdefault((spec.space, spec.direction), []).append(run.name)
            elif metric in run.metrics:
                undeclared += 1
        if seen and undeclared:
            warnings.append(
                f"{metric}: {undeclared} runs do not declare its space (recorded before metric "
                "declarations, or by a task without them); their values may live in another "
                "space than the declared runs'."
            )
        if len(seen) > 1:
            detail = "; ".join(
                f"{space}, {direction} is better in {len(names)} runs (e.g. {names[0]})"
                for (space, direction), names in seen.items()
            )
            message = (
                f"{metric} is declared differently by the runs compared ({detail}): these "
                "values do not measure the same thing"
            )
            if not allow_mixed:
                raise CompareError(
                    message + ". Compare the runs of one task (filter with --parent or "
                    "--experiment), or pass --allow-mixed-spaces to tabulate them anyway."
                )
            warnings.append(message + "; tabulated anyway (--allow-mixed-spaces).")
            continue
        for run, specs_of_run in declared:
            if metric in specs_of_run and metric in run.metrics:
                specs[metric] = specs_of_run[metric]
                break
    return specs, warnings


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

    @property
    def unconverged(self) -> int:
        """How many of the group's runs rest on unconverged solves (tag sparseland.unconverged)."""
        return sum(r.tags.get(UNCONVERGED_TAG) == "true" for r in self.runs)


@dataclass
class Comparison:
    group_by: list[str]
    metrics: list[str]
    groups: list[Group]
    #: Params (besides the seed) whose values differ inside some group: they were averaged over.
    pooled: list[str] = field(default_factory=list)
    #: What each metric measures, where its runs declared it (space, direction, unit).
    specs: dict[str, MetricSpec] = field(default_factory=dict)
    #: Things the reader must know (mixed declarations, seeds that changed nothing, ...).
    warnings: list[str] = field(default_factory=list)

    @property
    def n_runs(self) -> int:
        return sum(len(g.runs) for g in self.groups)


def compare(
    runs: Sequence[RunRecord],
    metrics: Sequence[str] | None = None,
    group_by: Sequence[str] | None = None,
    allow_mixed_spaces: bool = False,
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
    specs, warnings = metric_specs(runs, chosen, allow_mixed_spaces)
    return Comparison(keys, chosen, groups, pooled, specs, warnings)


def format_cell(mean: float, spread: float) -> str:
    if math.isnan(mean):
        return "–"
    if math.isnan(spread):
        return f"{mean:.4g}"
    return f"{mean:.4g} ± {spread:.2g}"


def best_group(comparison: Comparison, metric: str) -> int | None:
    """The index of the group with the best mean of ``metric`` (None without a direction)."""
    spec = comparison.specs.get(metric)
    if spec is None or spec.direction == "neither":
        return None
    means = [(g.mean(metric), i) for i, g in enumerate(comparison.groups)]
    means = [(m, i) for m, i in means if not math.isnan(m)]
    if len(means) < 2:
        return None
    sign = 1.0 if spec.direction == "higher" else -1.0
    return max(means, key=lambda mi: sign * mi[0])[1]


def header(comparison: Comparison, metric: str) -> str:
    """``test/psnr ↑`` (the arrow of its declared direction; no arrow when undeclared)."""
    spec = comparison.specs.get(metric)
    return metric if spec is None else f"{metric} {spec.arrow}"


def legend(comparison: Comparison) -> list[str]:
    declared = [comparison.specs[m] for m in comparison.metrics if m in comparison.specs]
    if not declared:
        return []
    spaces = "; ".join(f"{s.name}: {s.space}" + (f", {s.unit}" if s.unit else "") for s in declared)
    return [
        "↑ higher is better, ↓ lower is better, · neither; the best mean of each column is in "
        f"bold. Where each metric lives: {spaces}.",
        "",
    ]


def _flags(group: Group) -> str:
    return f"unconverged {group.unconverged}/{len(group.runs)}" if group.unconverged else ""


def to_markdown(comparison: Comparison, title: str = "") -> str:
    flagged = any(g.unconverged for g in comparison.groups)
    head = [*comparison.group_by, "n", *(header(comparison, m) for m in comparison.metrics)]
    if flagged:
        head.append("flags")
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
    lines += legend(comparison)
    if flagged:
        lines += [
            "flags: `unconverged k/n`: k of the group's n runs rest on pursuit solves that "
            f"stopped short of their tolerance (tag {UNCONVERGED_TAG}); their numbers are not "
            "those of the converged method.",
            "",
        ]
    lines += [f"**Warning:** {w}" for w in comparison.warnings]
    if comparison.warnings:
        lines.append("")
    if any(g.n_reused for g in comparison.groups):
        lines += [
            "reused: results of earlier runs with the same config and code, which this sweep "
            "did not run again (tag sparseland.reused_from names each).",
            "",
        ]
    lines.append("| " + " | ".join(head) + " |")
    numeric = len(comparison.group_by) + 1 + len(comparison.metrics)
    lines.append(
        "|"
        + "|".join(
            "---" if i < len(comparison.group_by) or i >= numeric else "---:"
            for i in range(len(head))
        )
        + "|"
    )
    best = {m: best_group(comparison, m) for m in comparison.metrics}
    for i, g in enumerate(comparison.groups):
        reused = f" ({g.n_reused} reused)" if g.n_reused else ""
        cells = [*(v or "—" for v in g.key), f"{len(g.runs)}{reused}"]
        for m in comparison.metrics:
            cell = format_cell(g.mean(m), g.spread(m))
            cells.append(f"**{cell}**" if best[m] == i else cell)
        if flagged:
            cells.append(_flags(g))
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
        row["unconverged_runs"] = g.unconverged
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
