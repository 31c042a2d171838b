"""Contracts between plugins: what a task needs of a model and a datamodule, declared.

A *capability* is a type. Hook capabilities are runtime-checkable protocols that name the
hooks they stand for (:class:`Denoiser` is ``denoise_image(noisy, sigma)``); property
capabilities are marker classes for what a hook cannot show (:class:`ScalePreserving`: a
preprocessor that leaves noise levels unchanged).

* Models, datamodules and preprocessors list what they provide in ``provides`` (a classmethod
  ``capabilities(config)`` may refine it from the config, e.g. a CNN in denoiser mode).
* Tasks list what they need in ``needs_model`` and ``needs_data``.
* The run's validation (``sparseland.spec``) checks the match before anything is built, with
  :func:`require`, and the refusal names the missing capability and the plugins that have it.
* Tasks then reach the hooks through the protocol types (``isinstance(model, Denoiser)``),
  never by looking attributes up by name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

import torch

Capability = type


# -- what models provide
@runtime_checkable
class Denoiser(Protocol):
    """A model that denoises a whole image: ``denoise_image(noisy (H, W), sigma) -> (H, W)``,
    in [0, 1] units with σ the noise standard deviation in the same units."""

    def denoise_image(self, noisy: torch.Tensor, sigma: float) -> torch.Tensor: ...


@runtime_checkable
class ReportsDenoising(Protocol):
    """A denoiser that chooses something from the noisy image itself (e.g. a parameter, by a
    risk estimate) and says what after each ``denoise_image``: ``denoise_report`` (name →
    value). Task ``denoise`` logs it as the run's tags ``denoise.<name>``."""

    denoise_report: dict[str, float]


@runtime_checkable
class Classifier(Protocol):
    """A model that predicts labels: ``classify(x) -> (n,)``."""

    def classify(self, x: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class WithDictionary(Protocol):
    """A model with a matrix dictionary ``D`` (m × k, atoms as columns)."""

    @property
    def D(self) -> torch.Tensor: ...


@runtime_checkable
class LearnedFromStart(Protocol):
    """A dictionary learned from ``initial_dictionary``, whose objective can be evaluated with
    any dictionary: ``encode(x, D)`` and ``objective(x, codes, D)``."""

    initial_dictionary: torch.Tensor

    def encode(self, x: torch.Tensor, D: torch.Tensor | None = None) -> torch.Tensor: ...

    def objective(
        self, x: torch.Tensor, codes: torch.Tensor, D: torch.Tensor | None = None
    ) -> torch.Tensor: ...


# -- what datamodules provide
@runtime_checkable
class NoisyImage(Protocol):
    """A datamodule with one whole test image: ``noisy_image``, ``clean_image`` (H, W) in [0, 1]
    and the noise level ``sigma`` in the same units."""

    noisy_image: torch.Tensor
    clean_image: torch.Tensor
    sigma: float


@runtime_checkable
class PatchGeometry(Protocol):
    """A datamodule of vectorised patches: ``patch_shape`` (h, w)."""

    patch_shape: tuple[int, int]


@runtime_checkable
class GroundTruthDictionary(Protocol):
    """A datamodule of synthetic signals with the dictionary that made them:
    ``true_dictionary`` (m × k)."""

    true_dictionary: torch.Tensor


class Labelled:
    """A datamodule whose batches carry labels ``y``."""


class TrainsOnNoisy:
    """A datamodule whose training signals come from the noisy test image itself."""


# -- what preprocessors provide
class Identity:
    """A preprocessor that leaves the signals as they are."""


class ScalePreserving:
    """A preprocessor that at most subtracts a per-signal constant (DC): residual norms and
    noise levels are unchanged, so error bounds from σ still hold."""


class Corruption:
    """A preprocessor that corrupts the signals (noise, knock-out); ``raw`` keeps them clean."""


def describe(capability: Capability) -> str:
    """``Name (first line of its docstring)`` for messages."""
    doc = (capability.__doc__ or "").strip().splitlines()
    return f"{capability.__name__} ({doc[0].rstrip('.,:')})" if doc else capability.__name__


def declared(provides: Iterable[Capability], config: Any = None) -> frozenset[Capability]:
    """The default ``capabilities(config)`` of every plugin base: its ``provides``."""
    return frozenset(provides)


def require(
    needs: Iterable[Capability],
    provided: frozenset[Capability],
    who: str,
    what: str,
    key: str,
    alternatives: Iterable[str] = (),
) -> None:
    """Refuse (ConfigError on ``key``) when ``who`` needs a capability that ``what`` lacks."""
    from sparseland.errors import ConfigError

    missing = [c for c in needs if c not in provided]
    if not missing:
        return
    names = ", ".join(describe(c) for c in missing)
    options = sorted(alternatives)
    raise ConfigError(
        key,
        f"{who} needs {names}, which {what} does not provide",
        f"use one that does: {', '.join(options)}" if options else "",
    )


__all__ = [
    "Capability",
    "Classifier",
    "Corruption",
    "Denoiser",
    "GroundTruthDictionary",
    "Identity",
    "Labelled",
    "LearnedFromStart",
    "NoisyImage",
    "PatchGeometry",
    "ReportsDenoising",
    "ScalePreserving",
    "TrainsOnNoisy",
    "WithDictionary",
    "declared",
    "describe",
    "require",
]
