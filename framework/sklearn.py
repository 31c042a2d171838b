"""scikit-learn estimators over any registered pursuit and dictionary learner.

    from sparseland.sklearn import SparseCoder, DictionaryLearner
    coder = SparseCoder(dictionary=D, pursuit="active_set", pursuit_params={"lam": 0.1})
    codes = coder.fit_transform(X)                      # X: (n_samples, n_features)
    dl = DictionaryLearner(n_components=64, learner="online").fit(X)
    dl.components_                                       # (n_components, n_features), atoms as rows

The layout is scikit-learn's (``sklearn.decomposition.SparseCoder``/``DictionaryLearning``):
samples are rows and atoms are the rows of ``components_``; inside, the pursuit and learner get
the dictionary as an m × k matrix of columns. numpy in gives numpy out; a torch tensor in runs
on the tensor's device and gives a tensor on that device. Plugins are built by name with
``build`` (sparseland.registry), so a third-party pursuit or learner works the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from sparseland.registry import build

__all__ = ["DictionaryLearner", "SparseCoder"]


def _as_tensor(estimator: BaseEstimator, X: Any, reset: bool) -> tuple[torch.Tensor, bool]:
    """X as a floating tensor (on its own device for tensors); True when it came as a tensor."""
    if isinstance(X, torch.Tensor):
        if X.ndim != 2:
            raise ValueError(f"Expected a 2D tensor (n_samples, n_features), got {tuple(X.shape)}.")
        if reset:
            estimator.n_features_in_ = X.shape[1]
        elif X.shape[1] != estimator.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
                f"{estimator.n_features_in_} features as input."
            )
        return (X if torch.is_floating_point(X) else X.float()), True
    array = validate_data(estimator, X, reset=reset, dtype=[np.float64, np.float32])
    array = np.ascontiguousarray(array)
    return torch.from_numpy(array if array.flags.writeable else array.copy()), False


def _out(t: torch.Tensor, as_tensor: bool) -> Any:
    return t if as_tensor else t.detach().cpu().numpy()


def _components(t: torch.Tensor, like: Any) -> Any:
    """Atoms as rows, in the kind (numpy or tensor) and the device the estimator was fit on."""
    return t.T.contiguous() if isinstance(like, torch.Tensor) else t.T.detach().cpu().numpy()


class _Coding(TransformerMixin, BaseEstimator):
    """What both estimators share: coding with the pursuit, and reconstruction."""

    pursuit: str
    pursuit_params: dict[str, Any] | None

    def _pursuit(self) -> Any:
        return build("pursuit", self.pursuit, **(self.pursuit_params or {}))

    def _dictionary(self, like: torch.Tensor) -> torch.Tensor:
        """The m × k matrix of atoms (columns) in ``like``'s dtype and device."""
        components = self.components_
        t = components if isinstance(components, torch.Tensor) else torch.from_numpy(components)
        return t.T.to(dtype=like.dtype, device=like.device)

    def transform(self, X: Any) -> Any:
        """The codes of X, shape (n_samples, n_components)."""
        check_is_fitted(self, "components_")
        x, as_tensor = _as_tensor(self, X, reset=False)
        return _out(self._pursuit()(x, self._dictionary(x)), as_tensor)

    def inverse_transform(self, X: Any) -> Any:
        """Signals from codes: X @ components_, shape (n_samples, n_features)."""
        check_is_fitted(self, "components_")
        as_tensor = isinstance(X, torch.Tensor)
        codes = X if as_tensor else torch.from_numpy(np.asarray(X, dtype=np.float64))
        if codes.ndim != 2 or codes.shape[1] != self._n_atoms():
            raise ValueError(
                f"codes must have shape (n_samples, {self._n_atoms()}), got {tuple(codes.shape)}."
            )
        dictionary = self._dictionary(codes if codes.is_floating_point() else codes.double())
        return _out(codes.to(dictionary.dtype) @ dictionary.T, as_tensor)

    def _n_atoms(self) -> int:
        return int(self.components_.shape[0])

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class SparseCoder(_Coding):
    """Sparse coding with a fixed dictionary and any registered pursuit; ``fit`` learns nothing.

    Parameters
    ----------
    dictionary : array or tensor of shape (n_components, n_features), default=None
        The atoms as rows (scikit-learn's layout). None: the identity, so the codes are the
        pursuit applied in the signal basis (e.g. soft thresholding for a Lasso pursuit).
    pursuit : str, default="active_set"
        A registered pursuit (``sparseland-plugins`` lists them). The default is the exact
        Lasso, so the codes of a signal do not depend on the rest of the batch.
    pursuit_params : dict, default=None
        Its config, e.g. ``{"lam": 0.1}`` or ``{"k": 8}`` for ``omp``.
    """

    def __init__(
        self,
        dictionary: Any = None,
        pursuit: str = "active_set",
        pursuit_params: dict[str, Any] | None = None,
    ) -> None:
        self.dictionary = dictionary
        self.pursuit = pursuit
        self.pursuit_params = pursuit_params

    def fit(self, X: Any, y: Any = None) -> SparseCoder:
        """Validate X and the dictionary; nothing is learned."""
        x, as_tensor = _as_tensor(self, X, reset=True)
        self._pursuit()  # an unknown pursuit or a bad config fails here, naming the key
        if self.dictionary is None:
            eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
            self.components_ = eye if as_tensor else eye.numpy()
        else:
            d = self.dictionary
            shape = tuple(d.shape)
            if len(shape) != 2 or shape[1] != x.shape[1]:
                raise ValueError(
                    f"dictionary must have shape (n_components, {x.shape[1]}) (atoms as rows, "
                    f"as scikit-learn's SparseCoder), got {shape}."
                )
            self.components_ = d
        return self

    def _n_atoms(self) -> int:
        return int(self.components_.shape[0])


class DictionaryLearner(_Coding):
    """Dictionary learning with any registered learner and pursuit.

    Parameters
    ----------
    n_components : int, default=8
        Number of atoms.
    learner, learner_params : str, dict
        A registered dictionary learner (``bcd``, ``online``, ``mod``, ``ksvd``...) and its
        config.
    pursuit, pursuit_params : str, dict
        The pursuit that codes the signals at each update, and its config.
    max_iter : int, default=10
        Passes over the data in ``fit`` (``partial_fit`` does one update on its batch).
    random_state : int, RandomState or None
        Draws the initial atoms (random training signals, normalised).
    """

    def __init__(
        self,
        n_components: int = 8,
        learner: str = "bcd",
        learner_params: dict[str, Any] | None = None,
        pursuit: str = "active_set",
        pursuit_params: dict[str, Any] | None = None,
        max_iter: int = 10,
        random_state: Any = None,
    ) -> None:
        self.n_components = n_components
        self.learner = learner
        self.learner_params = learner_params
        self.pursuit = pursuit
        self.pursuit_params = pursuit_params
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> DictionaryLearner:
        x, _ = _as_tensor(self, X, reset=True)
        self._start(x, X)
        for _ in range(self.max_iter):
            self._update(x)
        self.n_iter_ = self.max_iter
        self.components_ = _components(self.dictionary_, X)
        return self

    def partial_fit(self, X: Any, y: Any = None) -> DictionaryLearner:
        """One learner update on the batch X (starting the dictionary on the first call)."""
        first = not hasattr(self, "dictionary_")
        x, _ = _as_tensor(self, X, reset=first)
        if first:
            self._start(x, X)
        self._update(x)
        self.components_ = _components(self.dictionary_, X)
        return self

    def _start(self, x: torch.Tensor, like: Any) -> None:
        if not isinstance(self.n_components, int) or self.n_components < 1:
            raise ValueError(f"n_components must be a positive int, got {self.n_components!r}.")
        if not isinstance(self.max_iter, int) or self.max_iter < 0:
            raise ValueError(f"max_iter must be a non-negative int, got {self.max_iter!r}.")
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        gen = torch.Generator().manual_seed(seed)
        m, n = x.shape[1], x.shape[0]
        noise = torch.randn(m, self.n_components, generator=gen, dtype=x.dtype).to(x.device)
        picks = torch.randint(0, n, (self.n_components,), generator=gen).to(x.device)
        atoms = x[picks].T + 1e-3 * noise * (x.abs().max() + 1.0)  # random signals, jittered
        self.dictionary_ = atoms / atoms.norm(dim=0).clamp_min(torch.finfo(x.dtype).tiny)
        self._learner = build("learner", self.learner, **(self.learner_params or {}))
        self._state = self._learner.init_state(self.dictionary_)
        self.n_steps_ = 0

    def _update(self, x: torch.Tensor) -> None:
        d = self.dictionary_
        codes = self._pursuit()(x, d.to(x.dtype))
        stats = self._learner.statistics(x, codes, d)
        self._learner.update(d, self._state, stats)
        self.n_steps_ += 1

    def _dictionary(self, like: torch.Tensor) -> torch.Tensor:
        return self.dictionary_.to(dtype=like.dtype, device=like.device)

    def _n_atoms(self) -> int:
        return int(self.dictionary_.shape[1])

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
