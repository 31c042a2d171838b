"""example_sinusoids against ground truth: every clean signal has exactly n_nonzero non-zero
DCT-II coefficients (scipy's orthonormal DCT), the splits follow the dataset contract, the
preprocessor is fitted on the training split only, and the seed fixes the data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from scipy.fft import dct

from sparseland import build
from sparseland.errors import ConfigError
from sparseland.registry import build_from_config, make_config


def _data(**options: object) -> Any:
    dm = build("dataset", "example_sinusoids", **options)
    dm.setup("fit")
    return dm


def test_clean_signals_are_exactly_sparse_in_the_dct() -> None:
    dm = _data(signal_dim=24, n_nonzero=3, n_train=300, n_val=20, n_test=20)
    raw = dm.splits["train"].raw.double().numpy()
    coefficients = dct(raw, type=2, norm="ortho", axis=1)  # an independent DCT
    counts = (np.abs(coefficients) > 1e-5).sum(axis=1)
    assert (counts == 3).all()
    np.testing.assert_allclose(
        dm.true_dictionary.double().numpy().T @ raw.T, coefficients.T, atol=1e-5
    )


def test_splits_geometry_and_batches_follow_the_contract() -> None:
    dm = _data(signal_dim=16, n_train=100, n_val=30, n_test=40, batch_size=32)
    assert dm.signal_shape == (16,) and dm.signal_kind == "vector"
    assert {s: len(d) for s, d in dm.splits.items()} == {"train": 100, "val": 30, "test": 40}
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"x", "raw"} and batch["x"].shape == (32, 16)
    assert sum(len(b["x"]) for b in dm.test_dataloader()) == 40
    torch.testing.assert_close(dm.splits["val"].x, dm.splits["val"].raw)  # no preprocessor


def test_the_preprocessor_is_fitted_on_the_training_split_only() -> None:
    pre = build("preprocess", "example_standardize")
    config = make_config("dataset", "example_sinusoids", signal_dim=16, n_train=400, n_test=100)
    dm = build_from_config("dataset", config, pre)  # a dataset is built with the preprocessor
    dm.setup("fit")
    train, test = dm.splits["train"], dm.splits["test"]
    torch.testing.assert_close(pre.state["mean"], train.raw.mean(dim=0))
    torch.testing.assert_close(train.x.mean(dim=0), torch.zeros(16), atol=1e-5, rtol=0)
    torch.testing.assert_close(test.x, pre.transform(test.raw))
    torch.testing.assert_close(pre.inverse_transform(test.x), test.raw)


def test_the_seed_fixes_the_data_and_noise_is_added() -> None:
    a, b = _data(seed=1), _data(seed=1)
    torch.testing.assert_close(a.splits["test"].raw, b.splits["test"].raw)
    assert not torch.equal(a.splits["test"].raw, _data(seed=2).splits["test"].raw)
    noisy = _data(seed=1, noise_std=0.1).splits["train"].raw
    residual = noisy - a.splits["train"].raw
    assert abs(float(residual.std()) - 0.1) < 0.005  # the clean part is the same draw


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match="n_nonzero"):
        build("dataset", "example_sinusoids", signal_dim=4, n_nonzero=5)
    with pytest.raises(ConfigError, match="noise_std"):
        build("dataset", "example_sinusoids", noise_std=-1.0)
