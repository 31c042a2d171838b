"""A checkpoint says what produced it: the resolved config, the plugins with their packages and
versions, the Sparseland version and commit, read back from a checkpoint a real run wrote."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

import sparseland
from sparseland.checkpoint_record import KEY, main
from sparseland.errors import SparselandError
from sparseland.runner import run


def test_a_run_checkpoint_describes_the_run(
    make_config: Callable[..., DictConfig], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = make_config(
        "dataset.n_train=256", "dataset.n_val=64", "dataset.n_test=64", "model.n_atoms=16",
        "trainer.max_epochs=1", "pursuit=ista", "pursuit.lam=0.3", "logger.log_model=false",
    )  # fmt: skip
    run(cfg, run_dir=tmp_path / "run")
    [checkpoint] = (tmp_path / "run" / "checkpoints").glob("*.ckpt")

    info = sparseland.checkpoint_info(str(checkpoint))
    assert info["config"]["pursuit"]["lam"] == 0.3  # the resolved config of this run
    assert info["config"]["pursuit"]["name"] == "ista"
    assert info["config"]["trainer"]["max_epochs"] == 1
    version = importlib.metadata.version("sparseland")
    assert info["sparseland_version"] == version
    assert len(info["git_commit"]) == 40 or info["git_commit"] == "unknown"
    assert info["plugins"]["pursuit"] == {
        "name": "ista",
        "class": "sparseland.plugins.pursuit.ista.Ista",
        "distribution": "sparseland",
        "version": version,
    }
    for kind in ("model", "dataset", "task"):  # every plugin the run was built from
        assert info["plugins"][kind]["name"] == cfg[kind].name
    # plain types only: the checkpoint loads without unpickling arbitrary objects
    assert torch.load(checkpoint, weights_only=True)[KEY] == info

    main([str(checkpoint)])
    shown = capsys.readouterr().out
    assert "name: ista" in shown and "config:" not in shown
    main([str(checkpoint), "--config"])
    assert "lam: 0.3" in capsys.readouterr().out


def test_a_checkpoint_without_a_description_is_named(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(SparselandError, match="carries no Sparseland description"):
        sparseland.checkpoint_info(str(foreign))
    with pytest.raises(SparselandError, match="no such checkpoint file"):
        sparseland.checkpoint_info(str(tmp_path / "missing.ckpt"))
