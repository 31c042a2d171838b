"""Metrics that every relevant run logs (torch in, Python floats out), and their declarations.

Every metric a task logs is declared once, as a :class:`MetricSpec`: the space its values
live in, whether higher or lower is better, and its unit. Tasks list theirs in
``Task.declares``; the run stores each declaration as the tag
``sparseland.metric.<name> = <space>,<direction>,<unit>`` so that ``sparseland-compare`` can
show directions and refuse to put values from different spaces in one column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from sparseland.errors import SparselandError

#: Where a metric's values live.
SPACES = (
    "pixels",  # the signal in its original units, after the inverse preprocessing
    "preprocessed",  # the signal as the model sees it (after preprocessing)
    "codes",  # the sparse codes
    "dictionary",  # the dictionary (atoms)
    "labels",  # class labels (accuracies)
    "solver",  # how the solves went (iterations, convergence)
    "time",  # wall time
)
#: higher / lower is better; "neither" for a trade-off (ℓ0 at fixed λ) or a descriptive count.
DIRECTIONS = ("higher", "lower", "neither")
TAG_PREFIX = "sparseland.metric."
ARROWS = {"higher": "↑", "lower": "↓", "neither": "·"}


@dataclass(frozen=True)
class MetricSpec:
    """What one metric measures: ``name``, ``space`` (one of :data:`SPACES`), ``direction``
    (one of :data:`DIRECTIONS`) and ``unit`` ("" when it has none)."""

    name: str
    space: str
    direction: str
    unit: str = ""

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise SparselandError(
                f"metric {self.name}: space '{self.space}' is not one of {', '.join(SPACES)}; "
                "declare the space its values live in."
            )
        if self.direction not in DIRECTIONS:
            raise SparselandError(
                f"metric {self.name}: direction '{self.direction}' is not one of "
                f"{', '.join(DIRECTIONS)}."
            )
        if "," in self.unit:
            raise SparselandError(f"metric {self.name}: a unit may not contain a comma.")

    @property
    def arrow(self) -> str:
        return ARROWS[self.direction]

    def tag(self) -> tuple[str, str]:
        """The run tag that stores this declaration."""
        return TAG_PREFIX + self.name, f"{self.space},{self.direction},{self.unit}"

    @classmethod
    def from_tag(cls, key: str, value: str) -> MetricSpec:
        space, direction, unit = [*value.split(",", 2), "", ""][:3]
        return cls(key[len(TAG_PREFIX) :], space, direction, unit)


def declaration_tags(specs: Iterable[MetricSpec], logged: Iterable[str]) -> dict[str, str]:
    """The tags of the declarations of the ``logged`` metrics (undeclared ones are skipped)."""
    by_name = {s.name: s for s in specs}
    return dict(by_name[name].tag() for name in logged if name in by_name)


def declarations(tags: Mapping[str, str]) -> dict[str, MetricSpec]:
    """The metric declarations stored in a run's tags, by metric name."""
    return {
        key[len(TAG_PREFIX) :]: MetricSpec.from_tag(key, value)
        for key, value in tags.items()
        if key.startswith(TAG_PREFIX)
    }


#: Metrics the runner itself logs for every run.
RUN_METRICS = (
    MetricSpec("train_time_s", "time", "lower", "s"),
    MetricSpec("pursuit/converged_fraction", "solver", "higher"),
    MetricSpec("pursuit/max_gap", "solver", "lower"),
)


def mse(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    return float(torch.mean((x - x_hat) ** 2))


def psnr(x: torch.Tensor, x_hat: torch.Tensor, data_range: float = 1.0) -> float:
    err = mse(x, x_hat)
    return float("inf") if err == 0 else 10.0 * math.log10(data_range**2 / err)


def mean_l0(codes: torch.Tensor, tol: float = 0.0) -> float:
    """Mean number of non-zeros per code (codes are rows, or (n, ...) maps)."""
    flat = codes.reshape(codes.shape[0], -1)
    return float((flat.abs() > tol).sum(dim=1).double().mean())


def mean_l1(codes: torch.Tensor) -> float:
    return float(codes.reshape(codes.shape[0], -1).abs().sum(dim=1).double().mean())


def kurtosis(codes: torch.Tensor) -> float:
    """Pearson kurtosis E[(h − μ)⁴]/σ⁴ of all code entries (3 for a Gaussian; sparse ≫ 3)."""
    h = codes.double().reshape(-1)
    centred = h - h.mean()
    var = centred.pow(2).mean()
    return float(centred.pow(4).mean() / var.pow(2)) if var > 0 else float("nan")


def mutual_coherence(dictionary: torch.Tensor) -> float:
    """max_{i≠j} |d_iᵀ d_j| / (‖d_i‖‖d_j‖) over the columns of ``dictionary`` (Elad 2010, §2.3)."""
    d = dictionary.double()
    d = d / d.norm(dim=0, keepdim=True).clamp_min(1e-12)
    gram = (d.T @ d).abs()
    gram.fill_diagonal_(0.0)
    return float(gram.max())


def ssim(image: np.ndarray, reference: np.ndarray, data_range: float) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(reference, image, data_range=data_range))
