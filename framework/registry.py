"""The plugin registry: one decorator per kind records a class and its typed config.

Registering ``@register_pursuit("fista", config=FistaConfig)`` does three things:
  * records ``Fista`` under ("pursuit", "fista") so ``build("pursuit", "fista", lam=0.1)`` works;
  * stores ``FistaConfig`` in Hydra's ConfigStore as ``pursuit/fista`` so ``pursuit=fista``
    composes with no YAML file and a wrong key or type fails at composition, naming the key;
  * remembers which package registered it (its version is logged with every run).

Registration refuses mistakes (registry_checks.py): a class outside its kind's interface, a
config that is not a dataclass or has un-annotated fields, a name that a built-in owns, a name
that two third-party packages both claim. The kinds and their interfaces are one table
(kinds.py); ``register_pursuit`` and the other decorators are ``register`` bound to a kind.

Plugins are found through the entry-point group ``sparseland.plugins``. An entry point names a
module or a package; every module of a package is imported on its own, so one broken plugin
is reported and skipped while the rest load. The built-in plugins are also indexed by name
(``PLUGIN_INDEX`` in sparseland/plugins/__init__.py), so ``build("pursuit", "fista")`` imports
only the FISTA module and what it needs, not every plugin and not Lightning.
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
from typing import Any, Protocol, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from sparseland.errors import ConfigError, DuplicatePluginError, SparselandError, UnknownPluginError
from sparseland.kinds import KINDS
from sparseland.kinds import kind as kind_row
from sparseland.registry_checks import check_class, check_config

ENTRY_POINT_GROUP = "sparseland.plugins"
BUILTIN_PACKAGE = "sparseland.plugins"  # the shipped plugins: their names are reserved
BUILTIN_DISTRIBUTION = "sparseland"
UNKNOWN = "unknown"  # registered by code outside any installed plugin package (a script, a test)

__all__ = ["ENTRY_POINT_GROUP", "KINDS", "PluginConfig", "build", "get", "load_plugins", "register"]

T = TypeVar("T")


@dataclass
class PluginConfig:
    """Base of every plugin config. ``name`` is filled in by the registry."""

    name: str = ""

    def __post_init__(self) -> None:
        """Validation hook: a derived config checks its fields and calls
        ``super().__post_init__()``."""


@dataclass
class Entry:
    kind: str
    name: str
    cls: type
    config_cls: type
    module: str
    distribution: str = UNKNOWN
    version: str = UNKNOWN

    @property
    def builtin(self) -> bool:
        return self.distribution == BUILTIN_DISTRIBUTION

    @property
    def package(self) -> str:
        return f"{self.distribution}=={self.version}"

    @property
    def where(self) -> str:
        return f"{self.module}.{self.cls.__name__}"


@dataclass
class _State:
    entries: dict[str, dict[str, Entry]] = field(default_factory=lambda: {k: {} for k in KINDS})
    loaded: bool = False
    broken: dict[str, str] = field(default_factory=dict)
    # module prefix -> (distribution, version), from the entry points
    packages: dict[str, tuple[str, str]] | None = None
    index: dict[str, dict[str, str]] | None = None  # the built-ins: kind -> name -> module
    # (kind, name) claimed by several third-party packages: refused for all of them
    clashes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # the entry point being loaded: owns modules it imports outside its own package
    loading: tuple[str, str] | None = None


_STATE = _State()


def register(kind: str, name: str, config: type, override: bool = False) -> Callable[[T], T]:
    """Register a class as plugin ``name`` of ``kind`` with the dataclass ``config``.

    ``override=True`` replaces a plugin on purpose from a script or a test; an installed
    plugin package can never take a built-in's name.
    """
    kind_row(kind)
    check_config(kind, name, config, PluginConfig)

    def decorator(cls: T) -> T:
        check_class(kind, name, cls)
        assert isinstance(cls, type)
        dist, version = distribution_of(cls.__module__)
        entry = Entry(kind, name, cls, config, cls.__module__, dist, version)
        _claim(entry, override)
        _STATE.entries[kind][name] = entry
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


class KindDecorator(Protocol):
    def __call__(self, name: str, config: type, override: bool = False) -> Callable[[T], T]: ...


def _decorator(kind: str) -> KindDecorator:
    row = kind_row(kind)

    def register_kind(name: str, config: type, override: bool = False) -> Callable[[T], T]:
        return register(kind, name, config, override)

    register_kind.__name__ = register_kind.__qualname__ = row.decorator
    register_kind.__doc__ = f"Register a {kind} plugin: ``register('{kind}', ...)``."
    return register_kind


# ``register`` bound to each kind of the table (tests/test_registry_lazy.py checks they match).
register_pursuit = _decorator("pursuit")
register_learner = _decorator("learner")
register_preprocessor = _decorator("preprocess")
register_dataset = _decorator("dataset")
register_task = _decorator("task")
register_model = _decorator("model")


def _claim(entry: Entry, override: bool) -> None:
    """Refuse ``entry``'s name where another plugin owns it (see the module docstring)."""
    kind, name, dist = entry.kind, entry.name, entry.distribution
    third_party = dist not in (BUILTIN_DISTRIBUTION, UNKNOWN)
    shown = f"{kind} '{name}' from the package {entry.package} ({entry.where})"
    key = (kind, name)
    if key in _STATE.clashes and third_party:
        _STATE.clashes[key].append(f"{entry.package} ({entry.where})")
        raise DuplicatePluginError(_clash_message(kind, name))
    old = _STATE.entries[kind].get(name)
    reserved = name in builtin_index().get(kind, {}) or (old is not None and old.builtin)
    if reserved and dist != BUILTIN_DISTRIBUTION:
        if third_party:
            raise DuplicatePluginError(
                f"{shown} is refused: '{name}' is a built-in {kind} of sparseland, and "
                f"built-in names are reserved (the built-in stays in use); rename it in "
                f"{dist}, e.g. '{dist.replace('-', '_')}_{name}'"
            )
        _import_builtin(kind, name)  # loaded now, so it cannot come back over an override
        old = _STATE.entries[kind].get(name)
    if old is None:
        return
    if third_party and old.distribution not in (dist, BUILTIN_DISTRIBUTION, UNKNOWN):
        del _STATE.entries[kind][name]
        _forget_config(kind, name)
        _STATE.clashes[key] = [f"{old.package} ({old.where})", f"{entry.package} ({entry.where})"]
        raise DuplicatePluginError(_clash_message(kind, name))
    if not override:
        owner = "built-in, package sparseland" if old.builtin else f"package {old.package}"
        raise DuplicatePluginError(
            f"{kind} '{name}' is already registered by {old.where} ({owner}); "
            f"choose another name or pass override=True."
        )


def _clash_message(kind: str, name: str) -> str:
    claims = _STATE.clashes[(kind, name)]
    return (
        f"{kind} '{name}' is registered by several packages: {' and '.join(claims)}; it is "
        f"refused for all of them, so neither is used. Uninstall all but one, or have the "
        f"packages prefix their plugin names with their own (e.g. 'mypackage_{name}')"
    )


def _forget_config(kind: str, name: str) -> None:
    group = ConfigStore.instance().repo.get(kind)
    if isinstance(group, dict):
        group.pop(f"{name}.yaml", None)


def unregister(kind: str, name: str) -> None:
    """Remove a plugin (tests and interactive sessions)."""
    _STATE.entries[kind].pop(name, None)
    _STATE.clashes.pop((kind, name), None)
    _forget_config(kind, name)


# ----------------------------------------------------------------------------- packages


def distribution_of(module: str) -> tuple[str, str]:
    """The installed distribution (name, version) whose plugin package holds ``module``."""
    if _STATE.packages is None:
        _STATE.packages = _entry_point_packages()
    for prefix in sorted(_STATE.packages, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return _STATE.packages[prefix]
    if module == BUILTIN_PACKAGE or module.startswith(BUILTIN_PACKAGE + "."):
        return BUILTIN_DISTRIBUTION, _own_version()
    return _STATE.loading or (UNKNOWN, UNKNOWN)


def _entry_point_packages() -> dict[str, tuple[str, str]]:
    packages: dict[str, tuple[str, str]] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        prefix = ep.value.split(":")[0].strip()
        packages[prefix] = (
            (dist.metadata["Name"], dist.version) if dist is not None else (prefix, UNKNOWN)
        )
    return packages


def _own_version() -> str:
    try:
        return importlib.metadata.version(BUILTIN_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return UNKNOWN


def builtin_index() -> dict[str, dict[str, str]]:
    """The built-in plugins by kind and name: the module (under sparseland.plugins) that
    registers each. Reading it imports only the package's ``__init__``."""
    if _STATE.index is None:
        package = importlib.import_module(BUILTIN_PACKAGE)
        _STATE.index = dict(getattr(package, "PLUGIN_INDEX", {}))
    return _STATE.index


def _import_builtin(kind: str, name: str) -> None:
    module = builtin_index().get(kind, {}).get(name)
    if module is None:
        return
    path = f"{BUILTIN_PACKAGE}.{module}"
    try:
        importlib.import_module(path)
    except Exception as exc:
        _report_broken(path, exc)
        raise SparselandError(
            f"{kind} '{name}' cannot be built: its module {path} failed to import "
            f"({type(exc).__name__}: {exc}); install what it needs"
        ) from exc


# ----------------------------------------------------------------------------- discovery


def load_plugins() -> dict[str, str]:
    """Import every plugin module named by the ``sparseland.plugins`` entry points (once).

    Returns the modules that failed, with their error; each is also reported as a warning.
    """
    if _STATE.loaded:
        return dict(_STATE.broken)
    _STATE.loaded = True
    _STATE.packages = _entry_point_packages()
    try:
        for prefix, owner in _STATE.packages.items():
            _STATE.loading = owner
            try:
                module = importlib.import_module(prefix)
            except Exception as exc:
                _report_broken(prefix, exc)
                continue
            for sub in _submodules(module):
                try:
                    importlib.import_module(sub)
                except Exception as exc:
                    _report_broken(sub, exc)
    finally:
        _STATE.loading = None
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
    kind_row(kind)
    load_plugins()
    return sorted(_STATE.entries[kind])


def entries(kind: str | None = None) -> list[Entry]:
    load_plugins()
    kinds = [kind_row(kind).name] if kind else list(KINDS)
    return [e for k in kinds for _, e in sorted(_STATE.entries[k].items())]


def get(kind: str, name: str) -> Entry:
    """The plugin ``name`` of ``kind``. A built-in is imported on first use, alone; any other
    name loads every plugin package first."""
    kind_row(kind)
    table = _STATE.entries[kind]
    if name not in table and not _STATE.loaded:
        _import_builtin(kind, name)
        if name not in table:
            load_plugins()
    if (kind, name) in _STATE.clashes:
        raise DuplicatePluginError(_clash_message(kind, name))
    if name not in table:
        load_plugins()
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
