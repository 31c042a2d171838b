"""The plugin registry: one decorator per interface records a class and its typed config.

Registering ``@register_pursuit("fista", config=FistaConfig)`` does three things:
  * records ``Fista`` under ("pursuit", "fista") so ``build("pursuit", "fista", lam=0.1)`` works;
  * stores ``FistaConfig`` in Hydra's ConfigStore as ``pursuit/fista`` so ``pursuit=fista``
    composes with no YAML file and a wrong key or type fails at composition, naming the key;
  * remembers which package registered it (its version is logged with every run).

Plugins are found through the entry-point group ``sparseland.plugins``. An entry point names a
module or a package; every module of a package is imported on its own, so one broken plugin
is reported and skipped while the rest load.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.metadata
import pkgutil
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from sparseland.errors import ConfigError, DuplicatePluginError, UnknownPluginError

ENTRY_POINT_GROUP = "sparseland.plugins"

# Each kind is also a Hydra config group of the same name.
KINDS = ("pursuit", "learner", "preprocess", "dataset", "task", "model", "encoder", "decoder")

T = TypeVar("T")


@dataclass
class PluginConfig:
    """Base of every plugin config. ``name`` is filled in by the registry."""

    name: str = ""


@dataclass
class Entry:
    kind: str
    name: str
    cls: type
    config_cls: type
    module: str
    distribution: str = "unknown"
    version: str = "unknown"


@dataclass
class _State:
    entries: dict[str, dict[str, Entry]] = field(default_factory=lambda: {k: {} for k in KINDS})
    loaded: bool = False
    broken: dict[str, str] = field(default_factory=dict)
    current_distribution: tuple[str, str] = ("unknown", "unknown")


_STATE = _State()


def register(kind: str, name: str, config: type, override: bool = False) -> Callable[[T], T]:
    """Register ``cls`` as plugin ``name`` of ``kind`` with dataclass ``config``."""
    if kind not in KINDS:
        raise ValueError(f"Unknown plugin kind '{kind}'; kinds are {', '.join(KINDS)}.")
    if not (dataclasses.is_dataclass(config) and issubclass(config, PluginConfig)):
        raise TypeError(f"{kind} '{name}': config must be a dataclass derived from PluginConfig.")

    def decorator(cls: T) -> T:
        table = _STATE.entries[kind]
        if name in table and not override:
            old = table[name]
            raise DuplicatePluginError(
                f"{kind} '{name}' is already registered by {old.module}.{old.cls.__name__}; "
                f"choose another name or pass override=True."
            )
        dist, version = _STATE.current_distribution
        table[name] = Entry(kind, name, cls, config, cls.__module__, dist, version)  # type: ignore[arg-type]
        defaults: dict[str, Any] = {"name": name, **_run_seed(config)}
        node = OmegaConf.merge(OmegaConf.structured(config), defaults)
        ConfigStore.instance().store(group=kind, name=name, node=node, provider="sparseland")
        return cls

    return decorator


def _run_seed(config: type) -> dict[str, str]:
    """A config with a ``seed`` field takes the run's ``seed`` unless it is set explicitly
    (``dataset.seed=3``, a preset): ``seed=0,1,2`` then varies every draw of the run."""
    fields = {f.name for f in dataclasses.fields(config)}
    return {"seed": "${seed}"} if "seed" in fields else {}


def register_pursuit(name: str, config: type, override: bool = False) -> Callable[[T], T]:
    return register("pursuit", name, config, override)


def register_learner(name: str, config: type, override: bool = False) -> Callable[[T], T]:
    return register("learner", name, config, override)


def register_preprocessor(name: str, config: type, override: bool = False) -> Callable[[T], T]:
    return register("preprocess", name, config, override)


def register_dataset(name: str, config: type, override: bool = False) -> Callable[[T], T]:
    return register("dataset", name, config, override)


def register_task(name: str, config: type, override: bool = False) -> Callable[[T], T]:
    return register("task", name, config, override)


def register_model(name: str, config: type, override: bool = False) -> Callable[[T], T]:
    return register("model", name, config, override)


def register_encoder(name: str, config: type, override: bool = False) -> Callable[[T], T]:
    return register("encoder", name, config, override)


def register_decoder(name: str, config: type, override: bool = False) -> Callable[[T], T]:
    return register("decoder", name, config, override)


def unregister(kind: str, name: str) -> None:
    """Remove a plugin (tests and interactive sessions)."""
    _STATE.entries[kind].pop(name, None)


# ----------------------------------------------------------------------------- discovery


def load_plugins() -> dict[str, str]:
    """Import every plugin module named by the ``sparseland.plugins`` entry points (once).

    Returns the modules that failed, with their error; each is also reported as a warning.
    """
    if _STATE.loaded:
        return dict(_STATE.broken)
    _STATE.loaded = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        _STATE.current_distribution = (
            (dist.metadata["Name"], dist.version) if dist is not None else (ep.value, "unknown")
        )
        try:
            module = importlib.import_module(ep.value.split(":")[0])
        except Exception as exc:
            _report_broken(ep.value, exc)
            continue
        for sub in _submodules(module):
            try:
                importlib.import_module(sub)
            except Exception as exc:
                _report_broken(sub, exc)
    _STATE.current_distribution = ("unknown", "unknown")
    return dict(_STATE.broken)


def _submodules(module: Any) -> list[str]:
    path = getattr(module, "__path__", None)
    if path is None:
        return []
    return sorted(m.name for m in pkgutil.walk_packages(path, module.__name__ + ".", onerror=_skip))


def _skip(name: str) -> None:
    _report_broken(name, ImportError(traceback.format_exc(limit=1).strip().splitlines()[-1]))


def _report_broken(module: str, exc: BaseException) -> None:
    reason = f"{type(exc).__name__}: {exc}"
    _STATE.broken[module] = reason
    warnings.warn(
        f"sparseland: plugin module '{module}' failed to load and is skipped ({reason})",
        RuntimeWarning,
        stacklevel=2,
    )


# ----------------------------------------------------------------------------- look-up


def names(kind: str) -> list[str]:
    load_plugins()
    return sorted(_STATE.entries[kind])


def entries(kind: str | None = None) -> list[Entry]:
    load_plugins()
    kinds = [kind] if kind else list(KINDS)
    return [e for k in kinds for _, e in sorted(_STATE.entries[k].items())]


def get(kind: str, name: str) -> Entry:
    load_plugins()
    if kind not in KINDS:
        raise ValueError(f"Unknown plugin kind '{kind}'; kinds are {', '.join(KINDS)}.")
    table = _STATE.entries[kind]
    if name not in table:
        available = sorted(table)
        closest = difflib.get_close_matches(name, available, n=1)
        raise UnknownPluginError(kind, name, available, closest[0] if closest else None)
    return table[name]


def make_config(kind: str, name: str, **params: Any) -> Any:
    """The typed config of a plugin with ``params`` applied and validated (``__post_init__``)."""
    entry = get(kind, name)
    fields = {f.name for f in dataclasses.fields(entry.config_cls)}
    unknown = sorted(set(params) - fields)
    if unknown:
        valid = ", ".join(sorted(fields - {"name"}))
        raise ConfigError(
            f"{kind}.{unknown[0]}", f"not a parameter of {kind} '{name}'", f"valid: {valid}"
        )
    return entry.config_cls(**{**params, "name": name})


def config_from_node(kind: str, node: DictConfig | Any) -> Any:
    """Turn a composed config node (``cfg.pursuit``) into its validated dataclass."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return node
    name = node.get("name") if isinstance(node, DictConfig) else getattr(node, "name", None)
    entry = get(kind, str(name))
    data = OmegaConf.to_container(node, resolve=True)
    assert isinstance(data, dict)
    try:
        config = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(entry.config_cls), data))
    except ConfigError as exc:
        raise ConfigError(f"{kind}.{exc.key}", exc.problem, exc.fix) from None
    except ValueError as exc:  # __post_init__ checks raise ValueError with the field name
        raise ConfigError(kind, str(exc)) from None
    return config


def build(kind: str, name: str, /, **params: Any) -> Any:
    """Plain Python API: ``build("pursuit", "fista", lam=0.1)(x, dictionary)``."""
    return get(kind, name).cls(make_config(kind, name, **params))


def build_from_config(kind: str, node: DictConfig | Any, *args: Any) -> Any:
    config = config_from_node(kind, node)
    return get(kind, config.name).cls(config, *args)
