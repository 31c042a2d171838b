"""A run's identity: the hash of everything in its config that can change its result."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from omegaconf import DictConfig, OmegaConf

# Settings that change where or how a run is recorded, not what it computes.
NOT_SEMANTIC = ("paths", "logger", "resume", "force")
NOT_SEMANTIC_TRAINER = ("enable_progress_bar",)
TAG = "sparseland.config_hash"


def config_hash(cfg: DictConfig) -> str:
    data: Any = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_SEMANTIC:
        data.pop(key, None)
    for key in NOT_SEMANTIC_TRAINER:
        data.get("trainer", {}).pop(key, None)
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
