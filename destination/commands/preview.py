"""`destination preview`: what a run would do with these events — no writes."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from contextlib import AsyncExitStack
from pathlib import Path

from ..actions.loader import load_dir
from ..config import Settings, load_settings
from ..deliver import Delivery
from ..eventlog.sqlite import SqliteLogConsumer
from ..events import Event
from ..preview import PreviewReport, preview
from ..salesforce.client import SalesforceClient
from .backfill import csv_action, csv_options
from .backfill import events as backfill_events

NAME = "preview"
HELP = "dry run: would create / update / skip / fail, with reasons and field changes; writes nothing"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="NDJSON file of Segment events (one JSON object per line), or a "
                        "CSV file with --object and --map (as backfill takes it)")
    parser.add_argument("--source", help="the source the events belong to (default: the event's `source` key)")
    csv_options(parser)
    parser.add_argument("--from-log", type=int, metavar="N", help="preview the last N events of the embedded log")
    parser.add_argument("--samples", type=int, default=5, help="how many field-by-field samples to show")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--outcomes", action="store_true", help="with --json: one predicted outcome per event")


def read_events(path: Path, source: str | None) -> list[Event]:
    """NDJSON events; each line's `source` key (or --source) names its source."""
    events = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        body = json.loads(line)
        name = source or body.pop("source", None)
        if not name:
            raise SystemExit(f"{path}:{number}: no source (give --source or a `source` key)")
        events.append(Event(name, body))
    return events


async def _log_sample(settings: Settings, n: int) -> list[Event]:
    reader = SqliteLogConsumer(settings.event_log.path, consumer=f"preview-{id(settings)}")
    await reader.start()
    try:
        records = await reader.fetch(10_000_000, wait_seconds=0)
    finally:
        await reader.stop()  # its database connection, also when the read fails
    return [r.event for r in records[-n:] if r.event is not None]


async def run_preview(args: argparse.Namespace) -> PreviewReport:
    settings = load_settings(args.config)
    if not settings.connections:
        raise SystemExit("preview reads from Salesforce: configure a connection in destination.yaml")
    path = Path(args.file) if args.file else None
    if path is not None and path.suffix.lower() == ".csv":
        action_file = csv_action(args, path.stem)
        sources = {action_file.source: action_file}
        events: list[Event] = list(backfill_events(path, args, action_file.source))
    else:
        sources = load_dir(Path(args.actions) if args.actions else settings.actions_dir)
        events = read_events(path, args.source) if path else await _log_sample(settings, args.from_log or 100)
    async with AsyncExitStack() as stack:
        clients = {}
        for name, conn in settings.connections.items():
            clients[name] = await stack.enter_async_context(SalesforceClient(conn.connection(name)))
        return await preview(sources, Delivery(clients), events, samples=args.samples, batching=settings.batching)


def render(report: PreviewReport) -> str:
    data = report.to_json()
    lines = [f"{data['events']} events: " + ", ".join(f"would {k} {v}" for k, v in data["would"].items())]
    for reason, count in data["reasons"].items():
        lines.append(f"  {count:>6}  {reason}")
    lines.extend(f"warning: {line}" for line in data["warnings"])
    for sample in data["samples"]:
        lines.append(f"- {sample['event']} {sample['action']} → {sample['verdict']} {sample['object']} "
                     f"{sample['record_id'] or ''} {sample['reason'] or ''}".rstrip())
        for name, change in sample["changes"].items():
            lines.append(f"    {name}: {change['from']!r} → {change['to']!r}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    report = asyncio.run(run_preview(args))
    if args.json:
        print(json.dumps(report.to_json(outcomes=args.outcomes), indent=2, default=str), file=sys.stdout)
    else:
        print(render(report), file=sys.stdout)
    return 0
