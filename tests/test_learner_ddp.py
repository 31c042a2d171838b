"""Learning across processes: 2 CPU processes (gloo, ddp_spawn) learn the dictionary 1 process
learns on the same data, to 1e-5 (float32 sums in another order differ by ~1e-7)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sparseland.runner import run

TOLERANCE = 1e-5
COMMON = [
    "dataset=synthetic",
    "task=recover",
    "preprocess=none",
    "pursuit=omp",
    "pursuit.k=3",
    "model.n_atoms=50",
    "dataset.n_train=1200",
    "dataset.n_val=200",
    "dataset.n_test=200",
    "trainer.max_epochs=3",
    "trainer.val_check_interval=1.0",
]


def learned_dictionary(make_config, run_dir: Path, *overrides: str) -> torch.Tensor:
    run(make_config(*COMMON, *overrides, small=False), run_dir=run_dir)
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    return checkpoint["state_dict"]["dictionary.weight"]


@pytest.mark.slow
@pytest.mark.parametrize("learner", ["online", "ksvd"])
def test_two_processes_learn_the_dictionary_of_one(
    make_config, tmp_path: Path, learner: str
) -> None:
    """online: per-batch all-reduce of A, B and gathered replacement candidates; ksvd: a whole
    epoch of gathered signals and codes. Two processes with batch b see, together, the batches
    one process sees with batch 2b (dataset ``synthetic`` deals them as DistributedSampler)."""
    one = learned_dictionary(
        make_config, tmp_path / "one", f"learner={learner}", "trainer=cpu", "dataset.batch_size=600"
    )
    two = learned_dictionary(
        make_config, tmp_path / "two", f"learner={learner}", "trainer=ddp", "dataset.batch_size=300"
    )
    start = torch.load(tmp_path / "one" / "checkpoints" / "last.ckpt", weights_only=False)
    assert (one - start["state_dict"]["initial_dictionary"]).abs().max() > 0.1  # it learned
    assert (one - two).abs().max() < TOLERANCE
