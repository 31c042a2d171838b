"""Every config in conf/ and every registered plugin config composes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError, ValidationError

from sparseland import registry
from sparseland.app import config_dir
from sparseland.kinds import KINDS
from sparseland.spec import validate

CONF = config_dir()
GROUPS = KINDS


def yaml_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml")) if (CONF / group).is_dir() else []


@pytest.mark.parametrize("group", GROUPS)
def test_every_registered_plugin_config_composes(make_config, group: str) -> None:
    for name in registry.names(group):
        cfg = make_config(f"{group}={name}", small=False)
        assert cfg[group].name == name
        config = registry.config_from_node(group, cfg[group])
        assert type(config) is registry.get(group, name).config_cls


@pytest.mark.parametrize("group", ["trainer", "logger", "paths"])
def test_every_yaml_option_composes(make_config, group: str) -> None:
    options = yaml_options(group)
    assert options, f"conf/{group} has no options"
    for name in options:
        cfg = make_config(f"{group}={name}", small=False)
        assert group in cfg


def test_default_config_validates(make_config) -> None:
    spec = validate(make_config(small=False))
    assert spec["pursuit"].name == "fista" and spec["model"].name == "dictionary"


@pytest.mark.parametrize("preset", yaml_options("experiment"))
def test_every_experiment_preset_composes_and_validates(make_config, preset: str) -> None:
    cfg = make_config(f"experiment={preset}", small=False)
    validate(cfg)


def test_wrong_type_fails_at_composition_naming_the_key(make_config) -> None:
    with pytest.raises(ConfigCompositionException) as info:
        make_config("pursuit.lam=abc")
    assert "pursuit.lam" in str(info.value) + str(info.value.__cause__)


def test_unknown_key_fails_at_composition_naming_the_key(make_config) -> None:
    with pytest.raises(ConfigCompositionException) as info:
        make_config("pursuit.lamda=0.1")
    cause = info.value.__cause__
    assert isinstance(cause, ConfigKeyError | ValidationError) or "lamda" in str(info.value)
    assert "lamda" in str(info.value) + str(cause)


def test_out_of_range_value_fails_validation_naming_the_key(make_config) -> None:
    from sparseland.errors import ConfigError

    with pytest.raises(ConfigError, match=r"pursuit\.lam"):
        validate(make_config("pursuit.lam=-1"))


def test_configs_ship_inside_the_package() -> None:
    assert (CONF / "config.yaml").is_file()
    assert Path(registry.__file__).parent / "conf" == CONF or CONF.name == "conf"
