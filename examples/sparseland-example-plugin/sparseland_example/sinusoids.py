"""Dataset ``example_sinusoids``: signals that are sums of a few cosines, exactly sparse in the
orthonormal DCT-II basis, with optional white Gaussian noise.

Each signal of length m is x = C h + σ e: C is the m × m DCT-II matrix (orthonormal columns, the
ground truth exposed as ``true_dictionary``), h has exactly ``n_nonzero`` N(0, 1) entries at
uniformly random frequencies, e is N(0, I). The three splits are drawn from one generator seeded
by ``seed``, so a run sees the same data every time.

The contract of a dataset, as this one honours it:
  * splits: ``train``, ``val`` and ``test``, each a map-style dataset whose items are dicts with
    ``x`` (the model's input, preprocessed) and ``raw`` (the signal before preprocessing);
  * geometry: ``signal_shape = (signal_dim,)`` once ``setup`` has run, ``signal_kind = "vector"``;
  * value range: real values, unbounded (about N(0, n_nonzero / m) per entry);
  * the preprocessor, if any, is fitted on the training split only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from sparseland import PluginConfig, register_dataset
from sparseland.errors import check
from sparseland.interfaces import SparselandDataModule
from sparseland.plugins.datasets.patches import SignalDataset


@dataclass
class SinusoidsConfig(PluginConfig):
    signal_dim: int = field(default=32, metadata={"help": "samples per signal (m)"})
    n_nonzero: int = field(default=3, metadata={"help": "cosines per signal"})
    noise_std: float = field(default=0.0, metadata={"help": "σ of the added white noise"})
    n_train: int = 2000
    n_val: int = 200
    n_test: int = 500
    batch_size: int = 256
    seed: int = field(default=0, metadata={"help": "seeds the signals of every split"})

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("signal_dim", "n_nonzero", "n_train", "n_val", "n_test", "batch_size"):
            check(getattr(self, key) >= 1, key, f"must be >= 1, got {getattr(self, key)}")
        check(
            self.n_nonzero <= self.signal_dim,
            "n_nonzero",
            f"{self.n_nonzero} cosines but only {self.signal_dim} frequencies",
            "lower n_nonzero or raise signal_dim",
        )
        check(self.noise_std >= 0, "noise_std", f"must be >= 0, got {self.noise_std}")


def dct_matrix(m: int) -> torch.Tensor:
    """The orthonormal DCT-II basis as columns: C[t, f] = s_f cos(π (t + ½) f / m)."""
    t = torch.arange(m, dtype=torch.float64)[:, None]
    f = torch.arange(m, dtype=torch.float64)[None, :]
    scale = torch.full((1, m), math.sqrt(2.0 / m), dtype=torch.float64)
    scale[0, 0] = math.sqrt(1.0 / m)
    return (scale * torch.cos(math.pi * (t + 0.5) * f / m)).float()


@register_dataset("example_sinusoids", config=SinusoidsConfig)
class SinusoidsDataModule(SparselandDataModule):
    signal_kind = "vector"

    def setup(self, stage: str | None = None) -> None:
        if getattr(self, "_ready", False):
            return
        c = self.config
        gen = torch.Generator().manual_seed(c.seed)
        self.true_dictionary = dct_matrix(c.signal_dim)
        raw = {}
        for split, n in (("train", c.n_train), ("val", c.n_val), ("test", c.n_test)):
            support = torch.rand(n, c.signal_dim, generator=gen).argsort(dim=1)[:, : c.n_nonzero]
            values = torch.randn(n, c.n_nonzero, generator=gen)
            codes = torch.zeros(n, c.signal_dim).scatter_(1, support, values)
            noise = c.noise_std * torch.randn(n, c.signal_dim, generator=gen)
            raw[split] = codes @ self.true_dictionary.T + noise
        transform = self.fit_preprocessor(raw["train"])
        self.splits = {s: SignalDataset(transform(v), v) for s, v in raw.items()}
        self.signal_shape = (c.signal_dim,)
        self._ready = True
