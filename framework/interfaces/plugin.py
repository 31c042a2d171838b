from __future__ import annotations

from typing import Generic, TypeVar

C = TypeVar("C")


class Plugin(Generic[C]):
    """A plugin is built from its typed config (a dataclass registered with it)."""

    def __init__(self, config: C) -> None:
        self.config = config
