"""The ``t4dm`` command line: one entry point, subcommands registered by module path.

Each subcommand lives in its own module, imported only when that subcommand runs, so
``t4dm --help`` stays fast and a subcommand whose optional dependencies are missing fails
with a message naming the extra to install, not an ImportError trace. A subcommand module
provides ``add_arguments(parser)`` and ``run(args) -> int`` (the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

# name -> (module, one-line help, pip extra that provides its dependencies)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "migrate": ("integrations.migrate.cli", "import a Neo4j (Bolt) + Qdrant memory into a T4DM store", "migrate"),
    "eval": ("t4dm_core.learning.llm.eval_cli", "evaluate memory modes B0-B3 on a scenario", "adapters"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the subcommand, return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="t4dm", description="T4DM embedded agent memory: tools.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text, _extra) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    if argv[0] not in SUBCOMMANDS:
        parser.parse_args(argv)  # --help exits 0; an unknown command exits 2 with argparse's message
        return 2
    name = argv[0]
    module_name, help_text, extra = SUBCOMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"t4dm {name}: missing dependency {exc.name!r}; install it with: pip install 't4dm[{extra}]'",
              file=sys.stderr)
        return 2
    command_parser = argparse.ArgumentParser(prog=f"t4dm {name}", description=help_text)
    module.add_arguments(command_parser)
    return int(module.run(command_parser.parse_args(argv[1:])))


if __name__ == "__main__":  # pragma: no cover - `python -m t4dm_core.cli`
    sys.exit(main())
