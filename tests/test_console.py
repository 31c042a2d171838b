"""The console of a run: quiet while it works, a summary at the end that matches MLflow."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import run_app, store

from sparseland.console import compare_command, run_summary, ui_command

README_FIRST = [  # the README's first command, at tiny sizes
    "model=dictionary", "pursuit=fista", "learner=online", "preprocess=zca", "dataset=patches",
    "task=reconstruct", "dataset.n_train=256", "dataset.n_val=32", "dataset.n_test=64",
    "model.n_atoms=16", "trainer.max_epochs=1", "trainer.accelerator=cpu",
]  # fmt: skip
NOISE = (
    "mlflow.store.db.utils",
    "Creating initial MLflow database",
    "Updating database tables",
    "alembic",
    "litlogger",
    "Tip:",
    "DeprecationWarning",
    "is deprecated",
)


@pytest.mark.slow
def test_run_is_quiet_and_ends_with_its_summary(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    done = run_app(*README_FIRST, f"paths.outputs={outputs}", cwd=tmp_path)
    console = done.stdout + done.stderr
    assert done.returncode == 0, console[-4000:]
    for line in NOISE:
        assert line not in console, line

    client = store(outputs)
    (run,) = client.search_runs([client.get_experiment_by_name("sparseland").experiment_id])
    uri = f"sqlite:///{outputs.resolve() / 'mlflow.db'}"
    tail = done.stdout.rstrip().splitlines()
    start = max(i for i, line in enumerate(tail) if line.startswith("run "))
    summary = tail[start:]
    assert summary[0] == f"run {run.info.run_id} finished (experiment 'sparseland')"
    assert summary[-1] == f"  look at it: mlflow ui --backend-store-uri {uri} --host 127.0.0.1"
    assert f"  artifacts: {run.info.artifact_uri}" in summary
    shown = dict(re.findall(r"^  (test/\S+)\s+(\S+)$", "\n".join(summary), re.M))
    expected = {k: v for k, v in run.data.metrics.items() if k.startswith("test/")}
    assert set(shown) == set(expected) and expected
    for name, value in expected.items():
        assert float(shown[name]) == pytest.approx(value, rel=1e-5)


def test_summary_and_commands_name_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    text = run_summary({"test/psnr": 31.25, "train_time_s": 2.0}, "abc", "exp", "sqlite:///x.db",
                       "file:///a", show_ui=False)  # fmt: skip
    assert "test/psnr  31.25" in text and "train_time_s" not in text and "mlflow ui" not in text
    assert ui_command("sqlite:///a b.db") == (
        "mlflow ui --backend-store-uri 'sqlite:///a b.db' --host 127.0.0.1"
    )
    default = f"sqlite:///{Path('outputs').resolve() / 'mlflow.db'}"
    assert compare_command("p1", default) == "sparseland-compare --parent p1"
    assert compare_command("p1", "http://h:5000") == (
        "sparseland-compare --parent p1 --tracking-uri http://h:5000"
    )
