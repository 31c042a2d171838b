"""Atom-replacement settings the learners share, with their checks (one wording for all)."""

from __future__ import annotations

from dataclasses import dataclass

from sparseland import PluginConfig, option
from sparseland.errors import check

REPLACEMENTS = ("split", "signal")


def check_max_coherence(value: float) -> None:
    check(0 < value <= 1, "max_coherence", f"must be in (0, 1], got {value}")


def check_replacement(value: str) -> None:
    check(
        value in REPLACEMENTS,
        "replacement",
        f"'{value}' is not a replacement",
        "choose split or signal",
    )


@dataclass
class AtomReplacementConfig(PluginConfig):
    """Unused and duplicate atoms, as BCD, MOD and the online learner detect them."""

    replace_unused: bool = option(True, "replace unused and duplicate atoms")
    unused_threshold: float = option(1e-6, "A_jj below this × mean(diag A): the atom is unused")
    max_coherence: float = option(0.99, "replace atoms with |d_iᵀd_j| above this (1: never)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_max_coherence(self.max_coherence)
