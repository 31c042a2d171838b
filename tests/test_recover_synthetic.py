"""Dataset ``synthetic`` and task ``recover``: the ground truth, the SNR and the recovery rate."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from sparseland import build, registry
from sparseland.errors import ConfigError
from sparseland.plugins.datasets.synthetic import sparse_codes
from sparseland.plugins.tasks.recover import recovery_rate
from sparseland.runner import run
from sparseland.spec import validate


def synthetic(**options: object):
    dm = registry.build("dataset", "synthetic", **options)
    dm.setup()
    return dm


def test_signals_are_sparse_combinations_of_the_true_atoms_at_the_asked_snr() -> None:
    dm = synthetic(snr_db=20.0, n_train=4000)
    D = dm.true_dictionary
    assert D.shape == (20, 50)
    assert torch.allclose(D.norm(dim=0), torch.ones(50))
    clean, noisy = dm.clean["train"], dm.splits["train"].x
    snr = 10 * math.log10(float(clean.pow(2).mean() / (noisy - clean).pow(2).mean()))
    assert snr == pytest.approx(20.0, abs=0.3)
    # exactly three true atoms per signal: OMP with k = 3 explains (almost) every clean signal
    three = build("pursuit", "omp", k=3)(clean, D)
    explained = (clean - three @ D.T).norm(dim=1) < 1e-4 * clean.norm(dim=1)
    assert float(explained.double().mean()) > 0.97
    g = torch.Generator().manual_seed(0)
    assert bool((sparse_codes(1000, 50, 3, g).ne(0).sum(dim=1) == 3).all())


def test_clean_signals_and_reproducible_seed() -> None:
    a, b = synthetic(snr_db=None, seed=3), synthetic(snr_db=None, seed=3)
    assert torch.equal(a.splits["train"].x, a.clean["train"])
    assert torch.equal(a.true_dictionary, b.true_dictionary)
    assert not torch.equal(a.true_dictionary, synthetic(seed=4).true_dictionary)


def test_recovery_rate_counts_atoms_up_to_sign_and_order() -> None:
    g = torch.Generator().manual_seed(0)
    true = torch.randn(20, 50, generator=g)
    true /= true.norm(dim=0)
    signs = torch.where(torch.rand(50, generator=g) < 0.5, -1.0, 1.0)
    assert recovery_rate(true, true[:, torch.randperm(50, generator=g)] * signs) == 1.0
    # tilt ten atoms so that 1 − |cos| = 0.02 > 0.01: exactly those are missed
    tilted = true.clone()
    other = torch.randn(20, 10, generator=g)
    other -= true[:, :10] * (true[:, :10] * other).sum(0)
    other /= other.norm(dim=0)
    tilted[:, :10] = 0.98 * true[:, :10] + math.sqrt(1 - 0.98**2) * other
    assert recovery_rate(true, tilted) == pytest.approx(0.8)
    assert recovery_rate(true, torch.randn(20, 50, generator=g)) == 0.0


def test_config_errors_name_the_field(make_config) -> None:
    with pytest.raises(ConfigError, match="n_nonzero"):
        registry.make_config("dataset", "synthetic", n_nonzero=60)
    cfg = make_config("dataset=synthetic", "task=recover", "preprocess=zca", small=False)
    with pytest.raises(ConfigError, match="preprocess"):
        validate(cfg)


@pytest.mark.slow
def test_ksvd_run_recovers_a_clean_dictionary_end_to_end(make_config, tmp_path: Path) -> None:
    cfg = make_config(
        "dataset=synthetic",
        "task=recover",
        "preprocess=none",
        "learner=ksvd",
        "pursuit=omp",
        "pursuit.k=3",
        "model.n_atoms=50",
        "dataset.snr_db=null",
        "dataset.n_train=2000",
        "trainer.max_epochs=25",
        "trainer.val_check_interval=1.0",
        "trainer.check_val_every_n_epoch=5",
        small=False,
    )
    metrics = run(cfg, run_dir=tmp_path / "run")
    assert metrics["test/recovery_rate"] >= 0.9
