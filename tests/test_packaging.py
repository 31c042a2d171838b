"""The package installs as ``sparseland``: the wheel holds every sub-package and the configs,
and nothing with a generic name (``framework``, ``plugins``) at the top of site-packages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # standard library from Python 3.11

ROOT = Path(__file__).resolve().parents[1]


def _declared_packages() -> set[str]:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return set(setuptools["packages"])


def _packages_on_disk() -> set[str]:
    found = set()
    for top, name in (("framework", "sparseland"), ("plugins", "sparseland.plugins")):
        for init in (ROOT / top).rglob("__init__.py"):
            if "__pycache__" in init.parts or init.parent.name == "conf":
                continue
            rel = init.parent.relative_to(ROOT / top).parts
            found.add(".".join((name, *rel)))
    return found


def test_every_subpackage_is_declared() -> None:
    missing = _packages_on_disk() - _declared_packages()
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"


def test_the_import_name_is_sparseland() -> None:
    import sparseland
    import sparseland.plugins

    assert Path(sparseland.__file__).parent.name == "framework"
    assert Path(sparseland.plugins.__file__).parent.name == "plugins"


@pytest.mark.slow
def test_wheel_has_no_generic_top_level_package(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("sparseland-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"sparseland"}
    assert "sparseland/conf/config.yaml" in names
    assert "sparseland/plugins/pursuit/fista.py" in names
