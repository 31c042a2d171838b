"""sparseland.sklearn: scikit-learn's own estimator checks, Pipeline/GridSearchCV, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression, lars_path
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from sparseland.sklearn import DictionaryLearner, SparseCoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize(
    "estimator",
    [SparseCoder(), DictionaryLearner(max_iter=2, random_state=0)],
    ids=["SparseCoder", "DictionaryLearner"],
)
def test_check_estimator(estimator: object) -> None:
    # Every check applies (no expected failures): scikit-learn raises on the first failure.
    check_estimator(estimator)


def test_sparse_coder_matches_lars_and_inverts() -> None:
    rng = np.random.default_rng(0)
    d = rng.standard_normal((20, 10))  # 20 atoms as rows, 10 features
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    x = rng.standard_normal((6, 10))
    coder = SparseCoder(dictionary=d, pursuit_params={"lam": 0.2}).fit(x)
    codes = coder.transform(x)
    ref = np.stack(
        [lars_path(d.T, xi, alpha_min=0.2 / 10, method="lasso", return_path=False)[2] for xi in x]
    )
    np.testing.assert_allclose(codes, ref, atol=1e-8)
    np.testing.assert_allclose(coder.inverse_transform(codes), codes @ d, atol=1e-12)


def test_dictionary_learner_layout_and_partial_fit() -> None:
    rng = np.random.default_rng(1)
    truth = rng.standard_normal((12, 8))
    truth /= np.linalg.norm(truth, axis=1, keepdims=True)
    codes = rng.standard_normal((300, 12)) * (rng.random((300, 12)) < 0.2)
    x = codes @ truth
    dl = DictionaryLearner(n_components=12, learner="bcd", max_iter=15, random_state=0)
    dl.set_params(pursuit_params={"lam": 0.05})
    fitted = dl.fit(x)
    assert fitted.components_.shape == (12, 8)  # atoms as rows, as scikit-learn
    np.testing.assert_allclose(np.linalg.norm(fitted.components_, axis=1), 1.0, atol=1e-10)
    error = np.linalg.norm(x - dl.inverse_transform(dl.transform(x))) / np.linalg.norm(x)
    assert error < 0.2
    online = DictionaryLearner(n_components=12, learner="online", random_state=0)
    for batch in np.array_split(x, 6):
        online.partial_fit(batch)
    assert online.n_steps_ == 6 and online.components_.shape == (12, 8)


def test_grid_search_tunes_lambda_on_digits() -> None:
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x[:600], y[:600], random_state=0)
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("code", SparseCoder(pursuit="admm")),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    )
    grid = GridSearchCV(
        pipe, {"code__pursuit_params": [{"lam": 0.05}, {"lam": 5.0}, {"lam": 50.0}]}, cv=3
    )
    grid.fit(x_train, y_train)
    scores = grid.cv_results_["mean_test_score"]
    # λ = 50 zeroes every code (the standardised pixels are below it): chance-level accuracy.
    assert scores[2] < 0.2
    assert grid.best_params_["code__pursuit_params"]["lam"] == 0.05
    assert grid.score(x_test, y_test) > 0.9


def test_runs_on_the_device_of_its_data() -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.randn(16, 8, dtype=torch.float64, device=device)
    coder = SparseCoder(pursuit_params={"lam": 0.5}).fit(x)
    codes = coder.transform(x)
    assert isinstance(codes, torch.Tensor) and codes.device == x.device
    # identity dictionary: the Lasso codes are the soft threshold of x
    expected = torch.sign(x) * (x.abs() - 0.5).clamp_min(0)
    torch.testing.assert_close(codes, expected, atol=1e-10, rtol=0)
    dl = DictionaryLearner(n_components=4, max_iter=2, random_state=0).fit(x)
    assert isinstance(dl.components_, torch.Tensor) and dl.components_.device == x.device
