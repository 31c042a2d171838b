"""``sparseland-plugins [kind ...]``: the registered plugins by kind, with their config fields,
defaults and help (``field(metadata={"help": ...})``)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from sparseland import registry
from sparseland.kinds import KINDS


def describe(kinds: str | list[str] | None = None) -> str:
    """The listing of ``kinds`` (one, several, or all when ``None``)."""
    lines: list[str] = []
    broken = registry.load_plugins()
    wanted = KINDS if kinds is None else [kinds] if isinstance(kinds, str) else kinds
    for k in wanted:
        found = registry.entries(k)
        if not found:
            continue
        lines.append(f"{k}:")
        width = max(14, *(len(e.name) for e in found))
        for entry in found:
            lines.append(
                f"  {entry.name:<{width}} {entry.module}.{entry.cls.__name__}"
                f"  [{entry.distribution} {entry.version}]"
            )
            for f in dataclasses.fields(entry.config_cls):
                if f.name == "name":
                    continue
                text = f"      {f.name}: {_type_name(f.type)} = {_default(f)}"
                help_text = f.metadata.get("help")
                lines.append(f"{text}  # {help_text}" if help_text else text)
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
    parser.add_argument(
        "kinds",
        nargs="*",
        choices=KINDS,
        metavar="kind",
        help=f"only these kinds ({', '.join(KINDS)})",
    )
    args = parser.parse_args(argv)
    print(describe(args.kinds or None))


if __name__ == "__main__":
    main()
