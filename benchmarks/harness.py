"""What every benchmark shares: timing, the machine probe, result files and table rendering.

Each benchmark file measures one family and keeps its own command line; this module owns how a
time is taken (median over repeats, side by side), what is recorded about the machine (threads,
load average, versions), and how results land in benchmarks/results/<name>.json and .md.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).parent / "results"
VERSIONED = ("torch", "numpy", "scikit-learn", "spams-bin", "sporco", "sparseland")


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()``'s result and its wall time in seconds."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def median_time(fn: Callable[[], Any], repeats: int = 5) -> float:
    return statistics.median(timed(fn)[1] for _ in range(repeats))


def side_by_side(
    runs: dict[str, Callable[[], Any]], repeats: int = 5
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Every run once to warm up, then ``repeats`` rounds in which the runs take turns, so a
    load change on a shared machine hits all of them. Returns the last outputs and all times."""
    outputs = {name: fn() for name, fn in runs.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            outputs[name], seconds = timed(fn)
            times[name].append(seconds)
    return outputs, times


def load_average() -> float:
    return round(os.getloadavg()[0], 1)


def versions() -> dict[str, str]:
    found = {}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def machine() -> dict[str, Any]:
    """The machine probe recorded with every result."""
    return {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_1min": load_average(),
        "platform": f"{platform.machine()}, {platform.platform()}",
        "python": platform.python_version(),
        "versions": versions(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def json_path(name: str, results: Path = RESULTS) -> Path:
    return results / f"{name}.json"


def read(name: str, results: Path = RESULTS) -> dict[str, Any]:
    path = json_path(name, results)
    return json.loads(path.read_text()) if path.exists() else {}


def write(name: str, data: dict[str, Any], markdown: str, results: Path = RESULTS) -> None:
    """benchmarks/results/<name>.json and <name>.md."""
    results.mkdir(parents=True, exist_ok=True)
    json_path(name, results).write_text(json.dumps(data, indent=2))
    (results / f"{name}.md").write_text(markdown)


def merge_section(name: str, section: str, value: Any, results: Path = RESULTS) -> dict[str, Any]:
    """Merge one part's numbers into <name>.json (with the machine probe under ``machine``);
    returns the whole file's data for rendering."""
    data = read(name, results)
    data[section] = value
    data.setdefault("machine", {})[section] = machine()
    results.mkdir(parents=True, exist_ok=True)
    json_path(name, results).write_text(json.dumps(data, indent=2))
    return data


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A markdown table; floats with 4 significant digits."""

    def cell(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
