"""sparseland-compare against a real MLflow store: the table equals what MLflow's API returns."""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from PIL import Image

from sparseland.compare import cli
from sparseland.compare.plots import curve
from sparseland.compare.query import runs_of_experiment, runs_of_parent

PURSUITS = {"ista": "500", "fista": "200"}  # name -> its default max_iter (implied by the name)
LAMS = ("0.05", "0.1", "0.2")
SEEDS = ("0", "1", "2")


def _child(
    client: MlflowClient,
    exp: str,
    parent: str,
    params: dict[str, str],
    rng: np.random.Generator,
    status: str = "FINISHED",
    atoms: Path | None = None,
) -> str:
    run = client.create_run(
        exp, run_name=f"job {len(params)}", tags={"mlflow.parentRunId": parent} if parent else {}
    )
    rid = run.info.run_id
    metrics = [
        Metric("test/psnr", float(rng.normal(30, 2)), 0, 5),
        Metric("test/l0", float(rng.uniform(2, 20)), 0, 5),
        Metric("train_time_s", float(rng.uniform(0, 1)), 0, 5),
    ]
    # the curve: val/objective and val/time_s logged together at the same steps
    for i, (step, t) in enumerate([(0, 0.0), (0, 0.1), (2, 0.3), (4, 0.6)]):
        metrics += [
            Metric("val/objective", 2.0 / (1 + i), 1000 + i, step),
            Metric("val/time_s", t, 1000 + i, step),
        ]
    client.log_batch(rid, metrics=metrics, params=[Param(k, v) for k, v in params.items()])
    if atoms is not None:
        client.log_artifact(rid, str(atoms))
    client.set_terminated(rid, status)
    return rid


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("store")
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    exp = client.create_experiment("cmp", artifact_location=(root / "artifacts").as_uri())
    atoms = root / "atoms.png"
    Image.fromarray((np.random.default_rng(0).random((24, 24)) * 255).astype(np.uint8)).save(atoms)
    parent = client.create_run(exp, run_name="sweep", tags={"sparseland.kind": "sweep"}).info.run_id
    rng = np.random.default_rng(1)
    children = []
    for name, max_iter in PURSUITS.items():
        for lam in LAMS:
            for seed in SEEDS:
                params = {
                    "model.name": "dictionary",
                    "pursuit.name": name,
                    "pursuit.lam": lam,
                    "pursuit.max_iter": max_iter,
                    "seed": seed,
                    "paths.outputs": f"/somewhere/{seed}",
                }
                children.append(
                    _child(client, exp, parent, params, rng, atoms=atoms if seed == "0" else None)
                )
    bad = {
        "model.name": "dictionary",
        "pursuit.name": "ista",
        "pursuit.lam": "0.1",
        "pursuit.max_iter": "500",
        "seed": "9",
    }
    failed = _child(client, exp, parent, bad, rng, status="FAILED")
    lone = _child(client, exp, "", {**bad, "seed": "3"}, rng)  # outside the sweep
    client.set_terminated(parent, "FINISHED")
    return {
        "client": client,
        "uri": client.tracking_uri,
        "parent": parent,
        "children": children,
        "failed": failed,
        "lone": lone,
        "root": root,
    }


def _expected(
    client: MlflowClient, run_ids: list[str], metric: str
) -> dict[tuple[str, str], list[float]]:
    """Metric values per (pursuit, lam), read back one run at a time through MLflow's API."""
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for rid in run_ids:
        run = client.get_run(rid)
        out[(run.data.params["pursuit.name"], run.data.params["pursuit.lam"])].append(
            run.data.metrics[metric]
        )
    return out


def test_parent_table_matches_mlflow(store: dict, tmp_path: Path) -> None:
    client = store["client"]
    result = cli.run_compare(
        client,
        parent=store["parent"],
        metrics=["test/psnr", "test/l0"],
        x="pursuit.lam",
        out=tmp_path,
    )
    assert result.comparison.group_by == ["pursuit.name", "pursuit.lam"]  # seed, max_iter left out
    rows = list(csv.DictReader(io.StringIO((tmp_path / "table.csv").read_text())))
    assert len(rows) == len(PURSUITS) * len(LAMS)
    for metric in ("test/psnr", "test/l0"):
        expected = _expected(client, store["children"], metric)
        for row in rows:
            values = expected[(row["pursuit.name"], row["pursuit.lam"])]
            assert int(row["n_runs"]) == len(SEEDS) == len(values)  # the FAILED run is left out
            assert row["seeds"] == "0;1;2"
            assert float(row[f"{metric}:mean"]) == pytest.approx(np.mean(values), rel=1e-12)
            assert float(row[f"{metric}:std"]) == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    assert store["failed"] not in (tmp_path / "table.csv").read_text()
    # markdown: one line per group, cells "mean ± sd"
    md = (tmp_path / "table.md").read_text()
    values = _expected(client, store["children"], "test/psnr")[("fista", "0.05")]
    cell = f"{statistics.fmean(values):.4g} ± {statistics.stdev(values):.2g}"
    assert any(line.startswith("| fista | 0.05 | 3 | " + cell) for line in md.splitlines())
    # rows sorted numerically within each method
    assert [r["pursuit.lam"] for r in rows if r["pursuit.name"] == "ista"] == list(LAMS)


def test_plots_written_and_logged_to_parent(store: dict, tmp_path: Path) -> None:
    client = store["client"]
    result = cli.run_compare(
        client, parent=store["parent"], metrics=["test/psnr"], x="pursuit.lam", out=tmp_path
    )
    names = {p.name for p in result.files}
    assert names == {
        "table.md",
        "table.csv",
        "test-psnr_vs_pursuit-lam.png",
        "objective_vs_time.png",
        "atoms.png",
    }
    for name in names - {"table.md", "table.csv"}:
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and min(image.size) > 100
    assert result.logged_to == store["parent"]
    logged = {Path(a.path).name for a in client.list_artifacts(store["parent"], "compare")}
    assert names <= logged


def test_curve_pairs_objective_with_time(store: dict) -> None:
    times, values = curve(store["client"], store["children"][0])
    assert times == [0.0, 0.1, 0.3, 0.6]
    assert values == pytest.approx([2.0, 1.0, 2.0 / 3, 0.5])


def test_experiment_mode_leaves_out_the_sweep_parent(store: dict, tmp_path: Path) -> None:
    client = store["client"]
    runs = runs_of_experiment(client, "cmp")
    ids = {r.run_id for r in runs}
    assert ids == {*store["children"], store["lone"]}
    assert {r.run_id for r in runs_of_parent(client, store["parent"])} == set(store["children"])
    every = {r.run_id for r in runs_of_experiment(client, "cmp", statuses=None)}
    assert store["failed"] in every and store["parent"] not in every

    result = cli.run_compare(
        client,
        experiment="cmp",
        metrics=["test/l0"],
        group_by=["pursuit.name", "pursuit.lam"],
        out=tmp_path,
    )
    row = next(g for g in result.comparison.groups if g.key == ("ista", "0.1"))
    assert sorted(r.params["seed"] for r in row.runs) == ["0", "1", "2", "3"]
    values = [client.get_run(r.run_id).data.metrics["test/l0"] for r in row.runs]
    assert row.mean("test/l0") == pytest.approx(statistics.fmean(values))
    compare_run = client.get_run(result.logged_to or "")
    assert compare_run.data.tags["sparseland.kind"] == "compare"
    assert compare_run.info.status == "FINISHED"
    # a later comparison does not count the comparison run as a result
    assert result.logged_to not in {r.run_id for r in runs_of_experiment(client, "cmp")}


def test_cli(store: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(
        [
            "--parent",
            store["parent"],
            "--tracking-uri",
            store["uri"],
            "--metrics",
            "test/psnr,test/l0",
            "--group-by",
            "pursuit.name",
            "--x",
            "pursuit.lam",
            "--out",
            str(tmp_path),
            "--no-log",
        ]
    )
    printed = capsys.readouterr().out
    assert "| pursuit.name | pursuit.lam | n | test/psnr | test/l0 |" in printed
    assert (tmp_path / "test-l0_vs_pursuit-lam.png").exists()


def test_cli_errors_name_the_fix(
    store: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--experiment", "cpm", "--tracking-uri", store["uri"], "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "Did you mean 'cmp'?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(
            [
                "--parent",
                store["parent"],
                "--tracking-uri",
                store["uri"],
                "--metrics",
                "test/ssim",
                "--out",
                str(tmp_path),
            ]
        )
    err = capsys.readouterr().err
    assert "test/ssim" in err and "test/psnr" in err
    with pytest.raises(SystemExit):
        cli.main(
            [
                "--parent",
                store["parent"],
                "--tracking-uri",
                store["uri"],
                "--x",
                "model.name",
                "--out",
                str(tmp_path),
                "--no-log",
            ]
        )
    assert "does not vary" in capsys.readouterr().err


def test_cli_refuses_a_store_that_is_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(SystemExit):
        cli.main(["--experiment", "cmp", "--outputs", str(tmp_path / "elsewhere")])
    assert "no MLflow store at" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere" / "mlflow.db").exists()


def test_nan_spread_for_a_single_seed(store: dict, tmp_path: Path) -> None:
    result = cli.run_compare(
        store["client"],
        parent=store["parent"],
        metrics=["test/psnr"],
        group_by=["pursuit.name", "pursuit.lam", "seed"],
        out=tmp_path,
        log_artifacts=False,
    )
    assert len(result.comparison.groups) == len(store["children"])
    assert all(math.isnan(g.spread("test/psnr")) for g in result.comparison.groups)


def test_x_implied_by_a_name_is_still_plotted(store: dict, tmp_path: Path) -> None:
    result = cli.run_compare(
        store["client"], parent=store["parent"], metrics=["test/l0"], x="pursuit.max_iter",
        out=tmp_path, log_artifacts=False,
    )  # fmt: skip
    assert result.comparison.group_by == ["pursuit.name", "pursuit.lam", "pursuit.max_iter"]
    assert (tmp_path / "test-l0_vs_pursuit-max_iter.png").exists()
