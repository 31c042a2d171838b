"""``sparseland-plugins``: every registered plugin by kind, with its config fields and defaults."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from sparseland import registry


def describe(kind: str | None = None) -> str:
    lines: list[str] = []
    broken = registry.load_plugins()
    for k in registry.KINDS if kind is None else (kind,):
        found = registry.entries(k)
        if not found:
            continue
        lines.append(f"{k}:")
        for entry in found:
            lines.append(
                f"  {entry.name:<14} {entry.module}.{entry.cls.__name__}"
                f"  [{entry.distribution} {entry.version}]"
            )
            for f in dataclasses.fields(entry.config_cls):
                if f.name == "name":
                    continue
                lines.append(f"      {f.name}: {_type_name(f.type)} = {_default(f)}")
    if broken:
        lines.append("failed to load:")
        lines.extend(f"  {module}: {reason}" for module, reason in sorted(broken.items()))
    return "\n".join(lines)


def _type_name(t: Any) -> str:
    return t if isinstance(t, str) else getattr(t, "__name__", str(t))


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return repr(f.default_factory())
    return "(required)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", nargs="?", choices=registry.KINDS, help="only this kind")
    args = parser.parse_args(argv)
    print(describe(args.kind))


if __name__ == "__main__":
    main()
