"""A parallel launcher's job runs torch/BLAS on its share of the cores (``threads: auto``)."""

from __future__ import annotations

import pytest
import torch

from sparseland.errors import ConfigError
from sparseland.threads import apply_threads, thread_share


@pytest.mark.parametrize(
    ("launcher", "cores", "expected"),
    [
        (None, 8, None),  # a single run keeps torch's default
        ({"_target_": "BasicLauncher"}, 8, None),  # jobs one after another: all cores each
        ({"n_jobs": 4}, 2, 1),  # more workers than cores: one thread each, never zero
        ({"n_jobs": 4}, 16, 4),
        ({"n_jobs": 3}, 8, 2),
        ({"n_jobs": -1}, 8, 1),  # joblib's "every core": as many workers as cores
        ({"n_jobs": -2}, 8, 1),
        ({"cpus_per_task": 6, "tasks_per_node": 1}, 64, 6),  # submitit: what the job reserved
    ],
)
def test_auto_gives_each_parallel_job_its_share(
    launcher: dict | None, cores: int, expected: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert thread_share("auto", launcher, cores) == expected


def test_slurm_allocation_and_explicit_counts_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
    assert thread_share("auto", {"cpus_per_task": 8}, 64) == 3
    assert thread_share(5, {"n_jobs": 4}, 2) == 5


@pytest.mark.parametrize("bad", [0, -1, "all", 1.5, True])
def test_a_bad_setting_names_the_key(bad: object) -> None:
    with pytest.raises(ConfigError, match="threads"):
        thread_share(bad, None, 2)


def test_apply_sets_torch_threads() -> None:
    before = torch.get_num_threads()
    try:
        assert apply_threads(1) == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
