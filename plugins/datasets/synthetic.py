"""Dataset ``synthetic``: signals x = D* h + noise from a known random dictionary D*.

As in the K-SVD experiments (Aharon, Elad and Bruckstein 2006, §V-A): D* has i.i.d.
Gaussian entries and unit-norm columns; every code has exactly ``n_nonzero`` non-zeros at
uniformly random positions with N(0, 1) values; white Gaussian noise is added at the given
SNR, 10 log₁₀(E‖D* h‖² / E‖noise‖²) = ``snr_db`` (None: no noise). The ground truth is
exposed as ``true_dictionary`` (m × k) for the task ``recover``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, DistributedSampler

from sparseland import PluginConfig, option, register_dataset
from sparseland.errors import check
from sparseland.interfaces import SparselandDataModule, contracts
from sparseland.plugins.datasets.patches import SignalDataset


@dataclass
class SyntheticConfig(PluginConfig):
    signal_dim: int = option(20, "signal dimension m (rows of D*)")
    n_atoms: int = option(50, "atoms k of the true dictionary D*")
    n_nonzero: int = option(3, "non-zeros of every code")
    snr_db: float | None = option(20.0, "signal-to-noise ratio in dB (None: clean signals)")
    n_train: int = option(1500, "training signals")
    n_val: int = option(500, "validation signals")
    n_test: int = option(500, "test signals")
    batch_size: int = option(500, "signals per batch")
    shuffle: bool = option(True, "shuffle the training signals every epoch")
    seed: int = option(0, "seed of D*, the codes and the noise")

    def __post_init__(self) -> None:
        values = vars(self)
        for key in (
            "signal_dim",
            "n_atoms",
            "n_nonzero",
            "n_train",
            "n_val",
            "n_test",
            "batch_size",
        ):
            check(values[key] >= 1, key, f"must be >= 1, got {values[key]}")
        check(
            self.n_nonzero <= self.n_atoms,
            "n_nonzero",
            f"{self.n_nonzero} non-zeros but only {self.n_atoms} atoms",
            "lower n_nonzero",
        )


def random_dictionary(m: int, k: int, generator: torch.Generator) -> torch.Tensor:
    D = torch.randn(m, k, generator=generator)
    return D / D.norm(dim=0, keepdim=True)


def sparse_codes(n: int, k: int, n_nonzero: int, generator: torch.Generator) -> torch.Tensor:
    """(n, k) codes with exactly ``n_nonzero`` N(0, 1) entries per row at random positions."""
    support = torch.rand(n, k, generator=generator).argsort(dim=1)[:, :n_nonzero]
    values = torch.randn(n, n_nonzero, generator=generator)
    return torch.zeros(n, k).scatter_(1, support, values)


def noise_std(clean: torch.Tensor, snr_db: float | None) -> float:
    """Per-entry σ such that E‖x‖² / E‖noise‖² = 10^(snr_db/10)."""
    if snr_db is None:
        return 0.0
    return float((clean.pow(2).mean() / 10.0 ** (snr_db / 10.0)).sqrt())


@register_dataset("synthetic", config=SyntheticConfig)
class SyntheticDataModule(SparselandDataModule):
    provides = (contracts.GroundTruthDictionary,)
    signal_kind = "vector"

    # setup's opening, alike in every dataset: runs once, draws from the run's seed
    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        c = self.config
        gen = torch.Generator().manual_seed(c.seed)
        self.true_dictionary = random_dictionary(c.signal_dim, c.n_atoms, gen)
        sizes = {"train": c.n_train, "val": c.n_val, "test": c.n_test}
        clean = {
            s: sparse_codes(n, c.n_atoms, c.n_nonzero, gen) @ self.true_dictionary.T
            for s, n in sizes.items()
        }
        sigma = noise_std(clean["train"], c.snr_db)
        raw = {s: v + sigma * torch.randn(v.shape, generator=gen) for s, v in clean.items()}
        transform = self.fit_preprocessor(raw["train"])
        self.splits = {s: SignalDataset(transform(v), v) for s, v in raw.items()}
        self.clean = clean
        self.noise_sigma = sigma
        self.signal_shape = (c.signal_dim,)
        self._ready = True

    def _loader(self, split: str) -> DataLoader[dict[str, torch.Tensor]]:
        return DataLoader(self.splits[split], batch_size=self.config.batch_size)

    def train_dataloader(self) -> DataLoader[dict[str, torch.Tensor]]:
        """Batches of one process: the rank-th slice of a (seed, epoch) permutation, as
        Lightning's DistributedSampler deals them, so P processes with batch size b see,
        together, exactly the batches one process with batch size P·b sees."""
        dist = torch.distributed
        on = dist.is_available() and dist.is_initialized()
        world, rank = (dist.get_world_size(), dist.get_rank()) if on else (1, 0)
        data = self.splits["train"]
        sampler: DistributedSampler[int] = DistributedSampler(
            data, num_replicas=world, rank=rank, shuffle=self.config.shuffle, seed=self.config.seed
        )
        return DataLoader(data, batch_size=self.config.batch_size, sampler=sampler)

    def val_dataloader(self) -> DataLoader[dict[str, torch.Tensor]]:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader[dict[str, torch.Tensor]]:
        return self._loader("test")
