"""example_standardize against scikit-learn's StandardScaler, fitted on the training rows only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from sparseland import build


def _rows(n: int, d: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = 3.0 + 2.0 * torch.randn(n, d, generator=gen, dtype=torch.float64)
    x[:, 0] = 5.0  # a constant coordinate: scale 1, as scikit-learn keeps it
    return x


@pytest.mark.parametrize(("with_mean", "with_std"), [(True, True), (True, False), (False, True)])
def test_matches_standard_scaler(with_mean: bool, with_std: bool) -> None:
    train, test = _rows(200, 6, seed=0), _rows(50, 6, seed=1)
    pre = build("preprocess", "example_standardize", with_mean=with_mean, with_std=with_std)
    pre.fit(train)
    reference = StandardScaler(with_mean=with_mean, with_std=with_std).fit(train.numpy())
    np.testing.assert_allclose(pre.transform(test).numpy(), reference.transform(test.numpy()))
    torch.testing.assert_close(pre.inverse_transform(pre.transform(test)), test)


def test_state_round_trips_into_a_fresh_preprocessor() -> None:
    train, test = _rows(100, 4, seed=2), _rows(10, 4, seed=3)
    fitted = build("preprocess", "example_standardize").fit(train)
    restored = build("preprocess", "example_standardize")
    restored.load_state_dict(fitted.state_dict())
    assert set(fitted.state_dict()) == {"mean", "scale"}
    torch.testing.assert_close(restored.transform(test), fitted.transform(test))


def test_unfitted_use_names_the_fix() -> None:
    with pytest.raises(RuntimeError, match=r"not fitted: call fit\(train\)"):
        build("preprocess", "example_standardize").transform(torch.zeros(2, 3))
