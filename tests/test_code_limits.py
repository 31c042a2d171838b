"""Limits the architecture keeps: few ``getattr`` calls and none that reads another plugin's
hook (hooks are declared capabilities, see sparseland.interfaces.contracts), and benchmark
files short enough to read (one family each)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob("framework/**/*.py"), *ROOT.glob("plugins/**/*.py")])

# Files allowed to break the rules below for now (none).
PENDING: set[str] = set()

# getattr on an object another plugin provides: a model, a datamodule, a pursuit, a task,
# a learner or a preprocessor (directly, or through a model's context)
PLUGIN_OBJECT = re.compile(
    r"getattr\(\s*(?:self\.)?(?:context\.)?"
    r"(?:model|datamodule|dm|pursuit|task|learner|preprocessor)\b"
)


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_getattr_is_rare() -> None:
    count = sum(p.read_text().count("getattr(") for p in SOURCES)
    assert count <= 25, f"{count} getattr calls in framework/ and plugins/ (at most 25)"


def test_no_getattr_reads_a_hook_of_another_plugin() -> None:
    found = [
        f"{_relative(p)}:{n}: {line.strip()}"
        for p in SOURCES
        if _relative(p) not in PENDING
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if PLUGIN_OBJECT.search(line)
    ]
    assert found == [], "declare the hook as a capability instead:\n" + "\n".join(found)


def test_benchmark_files_stay_under_400_lines() -> None:
    long = {
        _relative(p): n
        for p in sorted(ROOT.glob("benchmarks/*.py"))
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}, f"split these along their families: {long}"
