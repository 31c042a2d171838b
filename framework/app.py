"""``sparseland``: the Hydra app. ``sparseland pursuit=fista dataset=patches task=reconstruct``."""

from __future__ import annotations

import logging
import sys
from importlib.resources import files
from pathlib import Path

from omegaconf import DictConfig

from sparseland.errors import SparselandError
from sparseland.kinds import KINDS

log = logging.getLogger("sparseland")


def config_dir() -> Path:
    """The shipped configs: ``framework/conf`` (a link to the repo's ``conf/``)."""
    return Path(str(files("sparseland") / "conf")).resolve()


def prepare() -> None:
    """Load the plugins and publish every config (typed plugin configs, plugin YAML presets)."""
    from sparseland.config import register_framework_configs
    from sparseland.presets import register_plugin_presets
    from sparseland.registry import load_plugins

    load_plugins()
    register_resolvers()
    register_framework_configs()
    register_plugin_presets()


CONFIG_GROUPS = (
    *KINDS,
    "trainer",
    "logger",
    "paths",
    "experiment",
    "hparams_search",
)


def preflight(overrides: list[str]) -> None:
    """Refuse a config-group override whose value is not a name (``pursuit=0``) with a short
    message; Hydra itself would answer with a traceback. Other problems are left to Hydra."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from sparseland import registry
    from sparseland.errors import ConfigError

    parser = OverridesParser.create()
    parsed = []
    for text in (o for o in overrides if "=" in o and not o.startswith("-")):
        key = text.split("=")[0].lstrip("+~")
        if key.split(".")[0] == "problem":  # λ, k and ε are set on the pursuit (one spelling)
            field = key.partition(".")[2] or "lam"
            raise ConfigError(
                key,
                "the problem is built from the pursuit's config; there is no problem group",
                f"write pursuit.{field}=... (e.g. pursuit.lam=0.2, pursuit.k=8, pursuit.eps=0.1)",
            )
        try:
            parsed.extend(parser.parse_overrides([text]))
        except HydraException as exc:
            reason = str(exc).splitlines()[0]
            raise ConfigError(
                text.split("=")[0].lstrip("+~"),
                f"cannot parse '{text}' ({reason})",
                "quote values with special characters, e.g. key='a b'",
            ) from None
    for override in parsed:
        group = override.key_or_group
        if group not in CONFIG_GROUPS:
            continue
        values = (
            list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]
        )
        for value in values:
            if not isinstance(value, str):  # a number, a list, or null (Hydra: a traceback)
                kinds = registry.names(group) if group in KINDS else []
                choices = (
                    f"choose one of {', '.join(kinds)}" if kinds else "name one of its options"
                )
                if value is None:
                    choices += f", or leave {group} out to keep its default"
                shown = "null" if value is None else value
                raise ConfigError(group, f"'{shown}' is not a {group} name", choices)


def register_resolvers() -> None:
    """``${sl.quick:full,small}``: ``small`` when the run says ``quick=true`` (presets use it)."""
    from omegaconf import OmegaConf

    def quick(full: object, small: object, *, _root_: DictConfig) -> object:
        return small if _root_.get("quick", False) else full

    if not OmegaConf.has_resolver("sl.quick"):
        OmegaConf.register_new_resolver("sl.quick", quick)


def job(cfg: DictConfig) -> float | None:
    """One Hydra job. User errors print one short message; inside a sweep the others go on."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from sparseland.console import quiet
    from sparseland.runner import run

    quiet()  # again: Hydra has just configured logging for the job
    in_sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        metrics = run(cfg)
    except SparselandError as exc:
        print(f"sparseland: error: {exc}", file=sys.stderr)
        if in_sweep:
            return None
        sys.exit(2)
    except Exception as exc:
        if not in_sweep:
            raise
        log.exception("job failed (%s); the sweep goes on", exc)
        return None
    objective = metrics.get(str(cfg.get("objective_metric", "test/objective")))
    return float(objective) if objective is not None else None


def main() -> None:
    import hydra

    from sparseland.console import quiet
    from sparseland.worker_start import start_for_command_line

    quiet()
    # A joblib sweep's worker server imports on another core while this process prepares.
    start_for_command_line(sys.argv[1:])
    try:
        prepare()
        preflight(sys.argv[1:])
    except SparselandError as exc:
        print(f"sparseland: error: {exc}", file=sys.stderr)
        sys.exit(2)
    hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")(job)()


if __name__ == "__main__":
    main()
