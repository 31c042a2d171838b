"""``option(default, help)``: a config field with its help, shown by ``sparseland-plugins``.

Shorthand for ``field(default=..., metadata={"help": ...})``; a list or dict default is
copied for every instance (``default_factory``), so mutable defaults are safe.
"""

from __future__ import annotations

import copy
from dataclasses import field
from typing import Any, TypeVar

T = TypeVar("T")


def option(default: T, help: str) -> T:
    """A dataclass field defaulting to ``default`` whose help text is ``help``."""
    metadata = {"help": help}
    if isinstance(default, (list, dict, set)):
        value: Any = default
        made: Any = field(default_factory=lambda: copy.deepcopy(value), metadata=metadata)
    else:
        made = field(default=default, metadata=metadata)
    return made
