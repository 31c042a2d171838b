"""Declared metrics, paired differences over seeds and warnings of the comparison table, on
runs built in memory; the clean output folder and the grouped objective plot on a real store."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from sparseland.compare import cli, plots, stats
from sparseland.compare.query import CompareError, RunRecord
from sparseland.compare.table import compare, to_markdown
from sparseland.convergence import UNCONVERGED_TAG
from sparseland.errors import SparselandError
from sparseland.metrics import MetricSpec, declarations

MSE_PIXELS = MetricSpec("test/mse", "pixels", "lower")
PSNR = MetricSpec("test/psnr", "pixels", "higher", "dB")


def _run(
    i: int, method: str, seed: str, metrics: dict[str, float], specs=(MSE_PIXELS, PSNR), **tags
) -> RunRecord:
    params = {"model.name": "dictionary", "pursuit.name": method, "seed": seed}
    return RunRecord(
        f"r{i}", f"job {i}", "FINISHED", params, metrics, {**dict(s.tag() for s in specs), **tags}
    )


# fista and omp over the seeds 0, 1, 2: the PSNRs below give the paired differences
# omp − fista = 29.0 − 28.0, 30.5 − 28.5, 29.2 − 27.9 = 1.0, 2.0, 1.3
FISTA = {"0": 28.0, "1": 28.5, "2": 27.9}
OMP = {"0": 29.0, "1": 30.5, "2": 29.2}


def _sweep() -> list[RunRecord]:
    runs = []
    for method, psnrs in (("fista", FISTA), ("omp", OMP)):
        for seed, psnr in psnrs.items():
            mse = 10 ** (-psnr / 10)
            runs.append(_run(len(runs), method, seed, {"test/psnr": psnr, "test/mse": mse}))
    return runs


def test_metric_declaration_round_trips_through_its_tag_and_refuses_bad_values() -> None:
    key, value = PSNR.tag()
    assert (key, value) == ("sparseland.metric.test/psnr", "pixels,higher,dB")
    assert declarations({key: value, "other": "x"}) == {"test/psnr": PSNR}
    with pytest.raises(SparselandError, match="space 'pixel'"):
        MetricSpec("test/mse", "pixel", "lower")
    with pytest.raises(SparselandError, match="direction"):
        MetricSpec("test/mse", "pixels", "up")


def test_paired_difference_over_three_seeds_matches_the_hand_computation() -> None:
    comparison = compare(_sweep(), ["test/psnr"])
    (d,) = stats.paired_differences(comparison)
    assert (d.baseline, d.other, d.seeds, d.n) == ("fista", "omp", ["0", "1", "2"], 3)
    # by hand: differences 1.0, 2.0, 1.3; mean 4.3/3 = 1.43333; deviations −0.43333, 0.56667,
    # −0.13333; sum of squares 0.18778 + 0.32111 + 0.01778 = 0.52667; sd = √(0.52667/2) = 0.51316
    assert d.differences == pytest.approx([1.0, 2.0, 1.3])
    assert d.mean == pytest.approx(1.433333, abs=1e-6)
    assert d.sd == pytest.approx(0.513160, abs=1e-6)
    assert d.t_quantile == pytest.approx(4.303, abs=5e-4)  # the table value t_{0.975, 2}
    half = 4.302653 * 0.513160 / math.sqrt(3)  # = 1.274762
    assert d.ci == pytest.approx((1.433333 - half, 1.433333 + half), abs=1e-5)
    # sign test: omp above on all 3 seeds: p = 2 · (1/2)³ = 0.25
    assert d.signs == (3, 0)
    assert d.sign_p == pytest.approx(0.25)
    section = stats.to_markdown([d], comparison)
    assert "| omp | test/psnr ↑ | 3 | 1.433 | [0.1586, 2.708] |" in section
    assert "fewer than 6 seeds" in section


def test_pairs_only_the_common_seeds_and_a_baseline_must_be_a_row() -> None:
    runs = [
        r for r in _sweep() if not (r.params["pursuit.name"] == "omp" and r.params["seed"] == "2")
    ]
    comparison = compare(runs, ["test/mse"])
    (d,) = stats.paired_differences(comparison, baseline="omp")
    assert (d.baseline, d.other, d.seeds) == ("omp", "fista", ["0", "1"])
    assert math.isfinite(d.ci[0])
    with pytest.raises(CompareError, match="rows: fista, omp"):
        stats.paired_differences(comparison, baseline="ista")


def test_identical_metrics_across_seeds_are_warned_about() -> None:
    runs = _sweep()
    for run in runs[:3]:  # every fista seed logs the same numbers
        run.metrics = {
            "test/psnr": 28.0,
            "test/mse": 10**-2.8,
            "train_time_s": float(run.run_id[1]),
        }
    comparison = compare(runs, ["test/*", "train_time_s"])
    (warning,) = stats.identical_seeds(comparison)
    assert warning.startswith(
        "fista: its 3 runs (seeds 0, 1, 2) have identical test/mse, test/psnr"
    )
    assert stats.identical_seeds(compare(_sweep(), ["test/*"])) == []


def test_table_shows_directions_marks_the_best_and_flags_unconverged_rows() -> None:
    runs = _sweep()
    runs[0].tags[UNCONVERGED_TAG] = "true"
    md = to_markdown(compare(runs, ["test/mse", "test/psnr"]))
    assert "| pursuit.name | n | test/mse ↓ | test/psnr ↑ | flags |" in md
    fista = next(line for line in md.splitlines() if line.startswith("| fista |"))
    omp = next(line for line in md.splitlines() if line.startswith("| omp |"))
    assert fista.endswith("| unconverged 1/3 |") and "**" not in fista
    assert omp.count("**") == 4  # omp is best in both columns: lower mse, higher psnr
    assert "test/psnr: pixels, dB" in md


def test_runs_declaring_a_metric_in_different_spaces_are_refused() -> None:
    runs = _sweep()
    mse_pre = MetricSpec("test/mse", "preprocessed", "lower")
    runs[3] = _run(3, "omp", "0", runs[3].metrics, specs=(mse_pre, PSNR))
    with pytest.raises(CompareError, match=r"test/mse is declared differently.*preprocessed"):
        compare(runs, ["test/mse"])
    mixed = compare(runs, ["test/mse"], allow_mixed_spaces=True)
    assert "test/mse" not in mixed.specs and "declared differently" in mixed.warnings[0]
    assert "test/psnr" in compare(runs, ["test/psnr"]).specs  # the other column is fine
    runs[3] = _run(3, "omp", "0", runs[3].metrics, specs=())  # recorded without declarations
    (warning,) = compare(runs, ["test/mse"]).warnings
    assert warning.startswith("test/mse: 1 runs do not declare its space")


def _log(
    client: MlflowClient, exp: str, method: str, seed: int, offset: float, varies: bool = True
) -> None:
    rid = client.create_run(exp, run_name=f"{method} {seed}", tags=dict([PSNR.tag()])).info.run_id
    curve = [
        m
        for i in range(4)
        for m in (
            Metric("val/objective", 2.0 / (1 + i) + offset + 0.01 * seed, 1000 + i, i),
            Metric("val/time_s", 0.1 * i, 1000 + i, i),
        )
    ]
    client.log_batch(
        rid,
        metrics=[Metric("test/psnr", 28.0 + offset + seed * varies, 0, 0), *curve],
        params=[Param("pursuit.name", method), Param("seed", str(seed))],
    )
    client.set_terminated(rid, "FINISHED")


def test_each_call_writes_into_a_clean_folder_with_one_curve_per_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list = []
    save = plots._save
    monkeypatch.setattr(
        plots, "_save", lambda fig, path: drawn.append(fig.axes[0]) or save(fig, path)
    )
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("paired", artifact_location=(tmp_path / "a").as_uri())
    for method, offset in (("fista", 0.0), ("ista", 0.5)):
        for seed in range(3):
            _log(client, exp, method, seed, offset)
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "test-l0_vs_pursuit-lam.png").write_bytes(b"stale")  # from an earlier comparison
    (out / "notes.txt").write_text("mine")
    first = cli.run_compare(client, experiment="paired", out=out, log_artifacts=False)
    assert not (out / "test-l0_vs_pursuit-lam.png").exists()
    assert (out / "notes.txt").read_text() == "mine"  # not ours: kept
    assert {p.name for p in first.files} == {
        "table.md",
        "table.csv",
        "paired.csv",
        "objective_vs_time.png",
    }
    (d,) = first.differences
    assert d.differences == pytest.approx([0.5, 0.5, 0.5]) and d.n == 3
    # the objective plot: one line per group (the mean of its 3 seeds) and one band each
    (ax,) = drawn
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["fista (n=3)", "ista (n=3)"]
    assert list(lines[0].get_ydata()) == pytest.approx([2.01, 1.01, 2 / 3 + 0.01, 0.51])
    assert len(ax.collections) == 2
    assert "## Paired differences (other − fista" in (out / "table.md").read_text()
    # a second call without pairs leaves no stale paired.csv beside its table
    second = cli.run_compare(client, experiment="paired", out=out, group_by=[], log_artifacts=False)
    assert not second.differences and not (out / "paired.csv").exists()
    assert "paired.csv" not in (out / "table.md").read_text()


def test_cli_prints_directions_and_warns_about_seeds_that_changed_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("same", artifact_location=(tmp_path / "a").as_uri())
    for seed in range(2):
        _log(client, exp, "fista", seed, 0.0)
        _log(client, exp, "omp", seed, 1.0, varies=False)  # the seed reaches nothing
    cli.main(
        ["--experiment", "same", "--tracking-uri", uri, "--out", str(tmp_path / "o"), "--no-log"]
    )
    out, err = capsys.readouterr()
    assert "| pursuit.name | n | test/psnr ↑ |" in out
    assert "| omp | 2 | **29 ± 0** |" in out  # 29.0 for both seeds, above fista's 28.0, 29.0
    assert "warning: omp: its 2 runs (seeds 0, 1) have identical test/psnr" in err
    assert "fista:" not in err
    assert "## Paired differences (other − fista" in out and "| omp | test/psnr ↑ | 2 |" in out
