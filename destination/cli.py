"""The `destination` command: global options, then one sub-command from destination/commands/."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from . import commands
from .actions.loader import ConfigError
from .config import load_settings
from .logs import setup_logging


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command module found in destination.commands."""
    parser = argparse.ArgumentParser(prog="destination", description="Salesforce event destination")
    parser.add_argument("--config", default="destination.yaml",
                        help="settings file (embedded defaults when it does not exist)")
    parser.add_argument("--actions", default=None, help="folder of action YAML files (default: actions/)")
    sub = parser.add_subparsers(dest="command", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.configure(command)
        command.set_defaults(handler=module.run, reads_settings=getattr(module, "READS_SETTINGS", True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        if args.reads_settings:
            setup_logging(load_settings(args.config).logging)
        return int(args.handler(args) or 0)
    except ConfigError as exc:  # located problems (file:line:column, key), never a value
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
