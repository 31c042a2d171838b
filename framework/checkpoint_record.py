"""Checkpoints that describe themselves: what produced a Lightning checkpoint, read from it alone.

Every checkpoint a run writes carries, under the key ``sparseland``, the resolved config of the
run, each plugin it was built from (kind, name, package, version) and the Sparseland version and
git commit. ``sparseland.checkpoint_info(path)`` returns that record; from the shell:

    sparseland-checkpoint outputs/runs/<date>/<time>/checkpoints/last.ckpt
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf

from sparseland import registry
from sparseland.errors import SparselandError
from sparseland.kinds import KINDS

KEY = "sparseland"  # the checkpoint's entry holding the description
FORMAT = 1


def describe_run(cfg: DictConfig, provenance: dict[str, str]) -> dict[str, Any]:
    """The description stored in the run's checkpoints (plain types only, so it loads with
    ``torch.load(weights_only=True)``). ``provenance``: runner.provenance()'s tags."""
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # an interpolation that only resolves inside the Hydra app
        config = OmegaConf.to_container(cfg, resolve=False)
    plugins = {}
    # as in model_bundle.plugin_versions, with the plugin's class as well
    for kind in KINDS:
        node = cfg.get(kind)
        if node is None or "name" not in node:
            continue
        entry = registry.get(kind, str(node.name))
        plugins[kind] = {
            "name": entry.name,
            "class": entry.where,
            "distribution": entry.distribution,
            "version": entry.version,
        }
    return {
        "format": FORMAT,
        "sparseland_version": provenance.get("sparseland.version", "unknown"),
        "git_commit": provenance.get("sparseland.git_commit", "unknown"),
        "plugins": plugins,
        "config": config,
    }


class DescribeCheckpoint(Callback):
    """Writes the run's description into every checkpoint Lightning saves."""

    def __init__(self, description: dict[str, Any]) -> None:
        self.description = description

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        checkpoint[KEY] = self.description


def read_checkpoint_info(path: str | Path) -> dict[str, Any]:
    """The description stored in the checkpoint at ``path`` (see the module docstring)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise SparselandError(f"{path}: no such checkpoint file; give the path of a .ckpt file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SparselandError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    info = checkpoint.get(KEY) if isinstance(checkpoint, dict) else None
    if not isinstance(info, dict):
        raise SparselandError(
            f"{path}: this checkpoint carries no Sparseland description; it was written by "
            "another program or by a Sparseland older than its self-describing checkpoints"
        )
    return info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="What produced a Sparseland checkpoint.")
    parser.add_argument("checkpoint", help="a .ckpt file written by a Sparseland run")
    parser.add_argument("--config", action="store_true", help="also print the resolved config")
    args = parser.parse_args(argv)
    try:
        info = read_checkpoint_info(args.checkpoint)
    except SparselandError as exc:
        parser.exit(2, f"sparseland-checkpoint: error: {exc}\n")
    shown = info if args.config else {k: v for k, v in info.items() if k != "config"}
    print(yaml.safe_dump(shown, sort_keys=False), end="")


if __name__ == "__main__":
    main()
