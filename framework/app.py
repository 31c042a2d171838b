"""``sparseland``: the Hydra app. ``sparseland pursuit=fista dataset=patches task=reconstruct``."""

from __future__ import annotations

import logging
import sys
from importlib.resources import files
from pathlib import Path

from omegaconf import DictConfig

from framework.errors import SparselandError

log = logging.getLogger("sparseland")


def config_dir() -> Path:
    """The shipped configs: ``framework/conf`` (a link to the repo's ``conf/``)."""
    return Path(str(files("framework") / "conf")).resolve()


def prepare() -> None:
    """Load the plugins and publish every config (typed plugin configs, plugin YAML presets)."""
    from framework.config import register_framework_configs
    from framework.presets import register_plugin_presets
    from framework.registry import load_plugins

    load_plugins()
    register_framework_configs()
    register_plugin_presets()


def job(cfg: DictConfig) -> float | None:
    """One Hydra job. User errors print one short message; inside a sweep the others go on."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from framework.runner import run

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
    objective = metrics.get("test/objective")
    return float(objective) if objective is not None else None


def main() -> None:
    import hydra

    try:
        prepare()
    except SparselandError as exc:
        print(f"sparseland: error: {exc}", file=sys.stderr)
        sys.exit(2)
    hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")(job)()


if __name__ == "__main__":
    main()
