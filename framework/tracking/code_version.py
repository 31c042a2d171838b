"""The code a job runs, as run tags: a finished job is reused only when its code is unchanged.

A job's code is Sparseland itself (its version, git commit and a hash of the uncommitted changes
to tracked files; a content hash of the installed package when there is no git checkout) and,
for every plugin the job uses, the version and a content hash of the plugin package that
registered it and of the plugin's own module (so the log can name the module that changed).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sparseland import registry

CODE_TAG = "sparseland.code_hash"  # digest of every component below
COMPONENTS_TAG = "sparseland.code"  # JSON {component: identity}
SOURCE_SUFFIXES = (".py", ".yaml", ".yml")


@dataclass(frozen=True)
class CodeVersion:
    """``components``: ``{"sparseland": "0.1.0 git <commit> ...", "package x": ..., ...}``."""

    components: Mapping[str, str]

    @property
    def digest(self) -> str:
        text = json.dumps(dict(self.components), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def tags(self) -> dict[str, str]:
        return {CODE_TAG: self.digest, COMPONENTS_TAG: json.dumps(dict(self.components))}

    def changes_since(self, tags: Mapping[str, str]) -> list[str]:
        """The components that differ from those recorded in a run's ``tags``; plugin modules
        first (the most precise), then packages, then Sparseland itself."""
        try:
            recorded = json.loads(tags[COMPONENTS_TAG])
        except (KeyError, ValueError):
            return ["its code version was not recorded"]
        names = sorted(set(recorded) | set(self.components))
        changed = [n for n in names if recorded.get(n) != self.components.get(n)]
        order = {"module": 0, "package": 1}
        changed.sort(key=lambda n: order.get(n.split(" ", 1)[0], 2))
        return [n.split(" ", 1)[-1] for n in changed]


def code_version(plugins: Iterable[tuple[str, str]]) -> CodeVersion:
    """The code of a job that uses ``plugins`` (``(kind, name)`` pairs)."""
    components = {"sparseland": sparseland_identity()}
    for kind, name in plugins:
        entry = registry.get(kind, name)
        package = plugin_package(entry.module)
        components[f"package {package}"] = f"{entry.version} {source_hash(package)}"
        components[f"module {entry.module}"] = source_hash(entry.module)
    return CodeVersion(components)


@functools.cache
def sparseland_identity() -> str:
    """``<version> git <commit> [+ uncommitted <hash>]``, or ``<version> source <hash>``; the
    uncommitted changes are those to tracked files of the package, its plugins and configs.

    Cached: a process runs the code it imported, whatever happens to the files later."""
    try:
        version = importlib.metadata.version("sparseland")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    root = Path(__file__).resolve().parents[1]
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return f"{version} source {source_hash('sparseland')}"
    diff = _git(root, "diff", "HEAD", "--no-ext-diff", "--binary", "--", *_source_dirs()) or ""
    dirty = f" + uncommitted {hashlib.sha256(diff.encode()).hexdigest()[:16]}" if diff else ""
    return f"{version} git {commit}{dirty}"


def _source_dirs() -> list[str]:
    """Where Sparseland's code and configs live (edits to docs or tests change no result)."""
    framework = Path(__file__).resolve().parents[1]
    plugins = importlib.util.find_spec("sparseland.plugins")
    found = [framework, (framework / "conf").resolve()]
    found += (
        [Path(p).resolve() for p in (plugins.submodule_search_locations or [])] if plugins else []
    )
    return sorted({str(p) for p in found})


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=20, check=True, cwd=root
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def plugin_package(module: str) -> str:
    """The package an entry point of ``sparseland.plugins`` names and ``module`` lies in (the
    longest such); a module registered some other way counts as its own top-level package."""
    named = {ep.value.split(":")[0] for ep in _entry_points()}
    inside = [p for p in named if module == p or module.startswith(p + ".")]
    return max(inside, key=len) if inside else module.split(".")[0]


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=registry.ENTRY_POINT_GROUP))


@functools.cache
def source_hash(name: str) -> str:
    """Content hash of the source files of module or package ``name`` (paths and bytes)."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        return "missing"
    digest = hashlib.sha256()
    roots = [Path(p).resolve() for p in (spec.submodule_search_locations or [])]
    if roots:
        for root in roots:
            files = (p for p in root.rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file())
            for path in sorted(files):
                if "__pycache__" in path.parts:
                    continue
                digest.update(str(path.relative_to(root)).encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
    elif spec.origin and Path(spec.origin).is_file():
        digest.update(Path(spec.origin).read_bytes())
    else:
        return "unknown"
    return digest.hexdigest()[:16]
