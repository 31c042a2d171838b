"""The comparison's figures (matplotlib, Agg: no display needed).

* a metric against a swept parameter, one line per method (mean over seeds, bars: spread);
* the objective against wall time from the logged curves (``val/objective`` and ``val/time_s``
  are logged together at the same steps), one line per group (mean over seeds) with a band;
* the atoms of several runs side by side, from each run's ``atoms.png`` artifact.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from mlflow.tracking import MlflowClient

from sparseland.compare.query import RunRecord
from sparseland.compare.table import Comparison, Group, label, sort_key


def file_name(*parts: str) -> str:
    return "_".join(p.replace("/", "-").replace(".", "-") for p in parts) + ".png"


def _as_float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def metric_vs_param(comparison: Comparison, metric: str, x: str, path: str | Path) -> Path:
    """``metric`` against param ``x`` (one of the group-by params), one line per other setting."""
    if x not in comparison.group_by:
        raise ValueError(f"{x} must be one of the group-by params {comparison.group_by}")
    ix = comparison.group_by.index(x)
    others = [k for i, k in enumerate(comparison.group_by) if i != ix]
    lines: dict[tuple[str, ...], list[Group]] = {}
    for g in comparison.groups:
        lines.setdefault(tuple(v for i, v in enumerate(g.key) if i != ix), []).append(g)
    xs_all = sorted({g.key[ix] for g in comparison.groups}, key=sort_key)
    numeric = all(_as_float(v) is not None for v in xs_all)
    position = {v: (float(v) if numeric else float(i)) for i, v in enumerate(xs_all)}

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for key, groups in sorted(lines.items(), key=lambda kv: [sort_key(v) for v in kv[0]]):
        groups = sorted(groups, key=lambda g: sort_key(g.key[ix]))
        points = [(position[g.key[ix]], g.mean(metric), g.spread(metric)) for g in groups]
        points = [p for p in points if not math.isnan(p[1])]
        if not points:
            continue
        px, py, pe = zip(*points)
        errors = [0.0 if math.isnan(e) else e for e in pe]
        ax.errorbar(px, py, yerr=errors, marker="o", capsize=3, label=label(others, key))
    if numeric:
        values = [position[v] for v in xs_all]
        if min(values) > 0 and max(values) / min(values) >= 20:
            ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(xs_all)), xs_all)
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} against {x} (mean ± sd over seeds)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def curve(
    client: MlflowClient, run_id: str, y: str = "val/objective", t: str = "val/time_s"
) -> tuple[list[float], list[float]]:
    """The (time, objective) pairs of one run; both are logged in the same batch, so their
    histories pair up in the order (timestamp, step) they were written."""
    ys = sorted(client.get_metric_history(run_id, y), key=lambda m: (m.timestamp, m.step))
    ts = sorted(client.get_metric_history(run_id, t), key=lambda m: (m.timestamp, m.step))
    if len(ys) != len(ts):  # match on (step, timestamp) when one series has extra points
        at = {(m.step, m.timestamp): m.value for m in ts}
        pairs = [(at[(m.step, m.timestamp)], m.value) for m in ys if (m.step, m.timestamp) in at]
    else:
        pairs = [(mt.value, my.value) for mt, my in zip(ts, ys)]
    pairs.sort()
    return [p[0] for p in pairs], [p[1] for p in pairs]


def objective_vs_time(
    client: MlflowClient,
    comparison: Comparison,
    path: str | Path,
    y: str = "val/objective",
    t: str = "val/time_s",
) -> Path | None:
    """One line per group: at each logged point, the mean over the group's runs (seeds) of
    time and objective, and a band from the lowest to the highest run. Points are matched by
    their order (the validation checks of every run come at the same steps); runs of unequal
    length are cut to the shortest. None when no run logged both curves."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = False
    for i, g in enumerate(comparison.groups):
        curves = [curve(client, run.run_id, y, t) for run in g.runs]
        curves = [c for c in curves if c[0]]
        if not curves:
            continue
        length = min(len(c[0]) for c in curves)
        times = np.array([c[0][:length] for c in curves]).mean(axis=0)
        values = np.array([c[1][:length] for c in curves])
        colour = colours[i % len(colours)]
        name = label(comparison.group_by, g.key)
        ax.plot(
            times, values.mean(axis=0), marker=".", color=colour, label=f"{name} (n={len(curves)})"
        )
        if len(curves) > 1:
            ax.fill_between(
                times, values.min(axis=0), values.max(axis=0), color=colour, alpha=0.2, lw=0
            )
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel(f"{t} (wall time, s; mean over seeds)")
    ax.set_ylabel(y)
    ax.set_title(f"{y} against wall time (mean over seeds; band: min to max)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if len(comparison.groups) > 8 else 1)
    return _save(fig, path)


def atoms_side_by_side(
    client: MlflowClient,
    comparison: Comparison,
    path: str | Path,
    artifact: str = "atoms.png",
    max_panels: int = 12,
) -> Path | None:
    """The atoms of the first run (lowest seed) of each group; None when no run has them."""
    import matplotlib.image as mpimg

    panels: list[tuple[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, g in enumerate(comparison.groups):
            if len(panels) == max_panels:
                break
            run = _first_seed(g.runs)
            if artifact not in {a.path for a in client.list_artifacts(run.run_id)}:
                continue
            local = client.download_artifacts(run.run_id, artifact, str(Path(tmp) / str(i)))
            panels.append((label(comparison.group_by, g.key), mpimg.imread(local)))
    if not panels:
        return None
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, image) in zip(axes.flat, panels):
        ax.imshow(image, cmap="gray", interpolation="nearest")
        ax.set_title(title, fontsize=8)
    return _save(fig, path)


def _first_seed(runs: Sequence[RunRecord]) -> RunRecord:
    return min(runs, key=lambda r: sort_key(r.params.get("seed", "")))


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
