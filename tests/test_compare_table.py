"""The comparison table's grouping rules, on runs built in memory (no MLflow needed)."""

from __future__ import annotations

import math
import statistics

import pytest

from sparseland.compare.query import CompareError, RunRecord
from sparseland.compare.table import compare, default_group_by, select_metrics, to_markdown


def _run(i: int, psnr: float, **params: str) -> RunRecord:
    full = {"seed": "0", "paths.outputs": f"/out/{i}", "model.name": "dictionary", **params}
    return RunRecord(f"r{i}", f"job {i}", "FINISHED", full, {"test/psnr": psnr, "val/x": 1.0})


def _pursuit(name: str, lam: str, seed: str = "0") -> dict[str, str]:
    defaults = {"ista": "500", "fista": "200"}
    return {"pursuit.name": name, "pursuit.max_iter": defaults[name], "pursuit.lam": lam,
            "seed": seed}  # fmt: skip


RUNS = [
    _run(0, 30.0, **_pursuit("ista", "0.1")),
    _run(1, 31.0, **_pursuit("ista", "0.1", seed="1")),
    _run(2, 20.0, **_pursuit("fista", "1")),
    _run(3, 25.0, **_pursuit("fista", "0.1")),
    _run(4, 26.0, **_pursuit("fista", "0.1", seed="1")),
]


def test_default_group_by_leaves_out_seed_bookkeeping_and_implied_defaults() -> None:
    # max_iter differs only because ista and fista have different defaults: implied by the name
    assert default_group_by(RUNS) == ["pursuit.name", "pursuit.lam"]


def test_an_independently_swept_default_is_kept() -> None:
    runs = [*RUNS, _run(5, 1.0, **{**_pursuit("ista", "0.1"), "pursuit.max_iter": "50"})]
    assert default_group_by(runs) == ["pursuit.name", "pursuit.lam", "pursuit.max_iter"]


def test_groups_sorted_numerically_with_mean_and_sample_sd() -> None:
    c = compare(RUNS, ["test/psnr"])
    assert [g.key for g in c.groups] == [("fista", "0.1"), ("fista", "1"), ("ista", "0.1")]
    fista = c.groups[0]
    assert fista.mean("test/psnr") == pytest.approx(25.5)
    assert fista.spread("test/psnr") == pytest.approx(statistics.stdev([25.0, 26.0]))
    assert math.isnan(c.groups[1].spread("test/psnr"))  # one seed: no spread
    assert fista.seeds == ["0", "1"]
    md = to_markdown(c)
    assert "| fista | 0.1 | 2 | 25.5 ± 0.71 |" in md
    assert "| fista | 1 | 1 | 20 |" in md


def test_pooled_params_are_reported() -> None:
    c = compare(RUNS, ["test/psnr"], group_by=["pursuit.name"])
    assert c.pooled == ["pursuit.lam"]
    assert "Averaged over differing params: pursuit.lam" in to_markdown(c)


def test_metric_patterns_and_errors() -> None:
    assert select_metrics(RUNS, None) == ["test/psnr"]  # default test/*
    assert select_metrics(RUNS, ["val/*", "test/psnr"]) == ["val/x", "test/psnr"]
    with pytest.raises(CompareError, match=r"test/ssim.*test/psnr"):
        select_metrics(RUNS, ["test/ssim"])
    with pytest.raises(CompareError, match=r"no runs"):
        compare([], None)
    with pytest.raises(CompareError, match=r"pursuit\.lamb"):
        compare(RUNS, None, group_by=["pursuit.lamb"])
