"""`destination check`: validate every action file, then check it against Salesforce describe."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from ..actions.check import Locator, against_describe, risky_choices
from ..actions.loader import ConfigError, ConfigProblem, load_sources
from ..config import Settings, load_settings
from ..salesforce.client import SalesforceClient
from ..salesforce.errors import HostNotAllowed, SalesforceApiError

NAME = "check"
HELP = "validate the action files (and against Salesforce describe when a connection is reachable)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--offline", action="store_true", help="skip the describe checks")


def actions_dir(args: argparse.Namespace, settings: Settings) -> Path:
    return Path(args.actions) if getattr(args, "actions", None) else settings.actions_dir


async def check(settings: Settings, folder: Path, *, offline: bool = False) -> list[ConfigProblem]:
    """Every problem found, errors and warnings."""
    try:
        loaded = load_sources(folder)
    except ConfigError as exc:
        return exc.problems
    sources = {name: source for name, (source, _) in loaded.items()}
    files = {name: str(path) for name, (_, path) in loaded.items()}
    problems: list[ConfigProblem] = []
    for name, source in sources.items():
        problems.extend(risky_choices(source, Locator(files[name])))
    if offline:
        return problems
    for name, source in sources.items():
        conn = settings.connections.get(source.connection)
        if conn is None:
            if settings.connections:
                problems.append(Locator(files[name]).problem(("connection",), f"no connection named "
                                                             f"{source.connection!r} in the settings"))
            else:
                problems.append(ConfigProblem(files[name], None, None, "", "no Salesforce connection configured: "
                                              "describe checks skipped", "warning"))
            continue
        async with SalesforceClient(conn.connection(source.connection), backoff_initial=0.05) as client:
            async def describe(obj: str, client: SalesforceClient = client) -> dict[str, Any] | None:
                try:
                    return (await client.describe.get(obj)).raw
                except SalesforceApiError as exc:
                    if exc.status == 404:
                        return None
                    raise

            try:
                problems.extend(await against_describe(source, describe, Locator(files[name])))
            except (SalesforceApiError, HostNotAllowed) as exc:
                problems.append(ConfigProblem(files[name], None, None, "", f"describe checks skipped: cannot reach "
                                              f"Salesforce ({exc})", "warning"))
    return problems


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    problems = asyncio.run(check(settings, actions_dir(args, settings), offline=args.offline))
    for problem in problems:
        print(problem, file=sys.stderr if problem.severity == "error" else sys.stdout)
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    print(f"{errors} error(s), {warnings} warning(s)")
    return 1 if errors else 0
