"""`destination check`: validate every action file, then check it against Salesforce describe.

The describe is the connection's own user's (fields their profile hides are absent, fields they cannot
edit are not createable/updateable), so the checks answer "can this integration user do this".

Exit codes (stable, for CI):
  0  no errors (warnings allowed)
  1  errors in the action files
  2  the settings file does not load (one line per problem: file, line, key; nothing else was checked)
  3  the org refused the connection's credentials
  4  the org could not be reached (network, TLS, host not allowed, Salesforce unavailable)
`--offline` skips the org, so it only ever exits 0, 1 or 2. When a connection fails, its describe checks did not
run: that exit code wins over 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..actions.check import RECORD_TYPE_VALUES, Locator, against_describe, risky_choices
from ..actions.loader import ConfigError, ConfigProblem, load_sources
from ..config import Settings, load_settings
from ..salesforce.client import SalesforceClient
from ..salesforce.errors import AuthenticationError, HostNotAllowed, SalesforceApiError

NAME = "check"
HELP = "validate the action files (and against Salesforce describe as the connection's user)"

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_AUTH = 3
EXIT_UNREACHABLE = 4


@dataclass(frozen=True)
class ConnectionProblem(ConfigProblem):
    """A connection that could not be used: its exit code says why (3 credentials, 4 unreachable)."""

    exit_code: int = EXIT_UNREACHABLE


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--offline", action="store_true", help="skip the describe checks (exit 0, 1 or 2 only)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: {ok, exit_code, errors: [...], warnings: [...]}")


def actions_dir(args: argparse.Namespace, settings: Settings) -> Path:
    return Path(args.actions) if getattr(args, "actions", None) else settings.actions_dir


async def check(settings: Settings, folder: Path, *, offline: bool = False,
                config_file: str = "destination.yaml") -> list[ConfigProblem]:
    """Every problem found, errors and warnings; connection problems are located in `config_file`."""
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
    failed: dict[str, ConnectionProblem] = {}  # connection name → why it could not be used
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
        if source.connection in failed:
            continue
        async with SalesforceClient(conn.connection(source.connection), backoff_initial=0.05) as client:
            problem = await _connect(client, source.connection, config_file)
            if problem is not None:
                failed[source.connection] = problem
                problems.append(problem)
                continue

            async def describe(obj: str, client: SalesforceClient = client) -> dict[str, Any] | None:
                try:
                    found = await client.describe.get(obj)
                except SalesforceApiError as exc:
                    if exc.status == 404:
                        return None
                    raise
                if not found.picklists_by_record_type:
                    return found.raw
                return {**found.raw, RECORD_TYPE_VALUES: found.picklists_by_record_type}

            try:
                problems.extend(await against_describe(source, describe, Locator(files[name])))
            except (SalesforceApiError, HostNotAllowed) as exc:
                problem = _connection_problem(exc, source.connection, config_file)
                failed[source.connection] = problem
                problems.append(problem)
    return problems


async def _connect(client: SalesforceClient, name: str, config_file: str) -> ConnectionProblem | None:
    """Authenticate once; the problem when the org refuses the credentials or cannot be reached."""
    try:
        await client.tokens.token()
    except (SalesforceApiError, HostNotAllowed) as exc:
        return _connection_problem(exc, name, config_file)
    return None


def _connection_problem(exc: Exception, name: str, config_file: str) -> ConnectionProblem:
    where = f"connections.{name}"
    if isinstance(exc, AuthenticationError):
        # the OAuth error code and description only: never the credentials themselves
        return ConnectionProblem(config_file, None, None, f"{where}.auth", f"Salesforce refused the credentials "
                                 f"({exc.error.code}: {exc.error.message}); describe checks not run",
                                 exit_code=EXIT_AUTH)
    return ConnectionProblem(config_file, None, None, where, f"cannot reach Salesforce ({exc}); describe checks "
                             "not run", exit_code=EXIT_UNREACHABLE)


def exit_code(problems: list[ConfigProblem]) -> int:
    """The command's exit code for these problems (see the module docstring)."""
    connection = [p.exit_code for p in problems if isinstance(p, ConnectionProblem)]
    if connection:
        return max(connection)
    return EXIT_ERRORS if any(p.severity == "error" for p in problems) else EXIT_OK


def as_json(problems: list[ConfigProblem]) -> dict[str, Any]:
    """The `--json` report: a stable structure for CI."""
    def item(p: ConfigProblem) -> dict[str, Any]:
        return {"file": p.file, "line": p.line, "column": p.column, "key": p.path, "message": p.message}

    code = exit_code(problems)
    return {"ok": code == EXIT_OK, "exit_code": code,
            "errors": [item(p) for p in problems if p.severity == "error"],
            "warnings": [item(p) for p in problems if p.severity != "error"]}


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    problems = asyncio.run(check(settings, actions_dir(args, settings), offline=args.offline,
                                 config_file=str(args.config)))
    if getattr(args, "json", False):
        print(json.dumps(as_json(problems), indent=2))
        return exit_code(problems)
    for problem in problems:
        print(problem, file=sys.stderr if problem.severity == "error" else sys.stdout)
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    print(f"{errors} error(s), {warnings} warning(s)")
    return exit_code(problems)
