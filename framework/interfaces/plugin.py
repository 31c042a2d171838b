from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

C = TypeVar("C")


class Plugin(Generic[C]):
    """A plugin is built from its typed config (a dataclass registered with it)."""

    #: The capabilities (sparseland.interfaces.contracts) this plugin provides.
    provides: ClassVar[tuple[type, ...]] = ()

    @classmethod
    def capabilities(cls, config: Any = None) -> frozenset[type]:
        """What a plugin with ``config`` provides (``provides``, unless the config matters)."""
        return frozenset(cls.provides)

    def __init__(self, config: C) -> None:
        self.config = config
