"""What registration refuses: a class outside its kind's interface, a config that is not a
dataclass of its own, a class attribute that looks like a config field but has no annotation.

Each refusal is a ``TypeError`` naming the plugin, the problem and the fix; the registry calls
these before it records anything.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any

from sparseland.kinds import kind as kind_row

# Values a config field takes; a class attribute holding one, without an annotation, is a field
# the dataclass machinery silently drops.
_FIELD_LIKE = (bool, int, float, complex, str, bytes, list, tuple, dict, set, type(None))
_FIELD_LIKE_OR_FIELD = (*_FIELD_LIKE, dataclasses.Field)


def interface_of(kind: str) -> type:
    """The base class a plugin of ``kind`` must derive from (imported on demand)."""
    module, _, name = kind_row(kind).base.partition(":")
    base = getattr(importlib.import_module(module), name)
    assert isinstance(base, type)
    return base


def check_class(kind: str, name: str, cls: Any) -> None:
    """``cls`` is a class derived from the interface of ``kind``."""
    base = interface_of(kind)
    shown = f"{base.__module__.rsplit('.', 1)[0]}.{base.__name__}"
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        what = cls.__name__ if inspect.isclass(cls) else repr(cls)
        raise TypeError(
            f"{kind} '{name}': {what} does not derive from {shown}, the {kind} interface; "
            f"declare it as `class {what}({base.__name__})` (from {shown.rsplit('.', 1)[0]} "
            f"import {base.__name__}), built as {kind_row(kind).built_with}"
        )


def check_config(kind: str, name: str, config: Any, plugin_config: type) -> None:
    """``config`` is a ``@dataclass`` of its own, derived from ``plugin_config``, and every
    class attribute that looks like a field has an annotation."""
    label = f"{kind} '{name}'"
    if not (inspect.isclass(config) and issubclass(config, plugin_config)):
        raise TypeError(
            f"{label}: config must be a dataclass derived from PluginConfig, got {config!r}; "
            f"declare it as `@dataclass class MyConfig(PluginConfig)` "
            "(from sparseland import PluginConfig)"
        )
    if "__dataclass_fields__" not in vars(config):
        raise TypeError(
            f"{label}: config {config.__name__} is not a dataclass (its own fields would be "
            f"dropped); put `@dataclass` on the line above `class {config.__name__}`"
        )
    for klass in config.__mro__:
        if klass is object or klass is plugin_config.__base__:
            continue
        annotated = set(inspect.get_annotations(klass))
        for attr, value in vars(klass).items():
            if attr.startswith("_") or attr in annotated:
                continue
            if isinstance(value, _FIELD_LIKE_OR_FIELD):
                raise TypeError(
                    f"{label}: config {klass.__name__} has `{attr} = {value!r}` without a type "
                    f"annotation, so it is not a config field and cannot be set; annotate it, "
                    f"e.g. `{attr}: {type(value).__name__} = {value!r}` (or `ClassVar[...]` for "
                    "a constant that is not a parameter)"
                )
