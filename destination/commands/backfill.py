"""`destination backfill FILE`: history through an action — NDJSON events, or CSV rows with a column map
(a dataset sync matched by Salesforce Id, an external ID or a domain; mode update, create, or both).
Progress with rate and ETA; resumable: a checkpoint after every chunk whose outcomes are recorded, and
an event without a messageId gets one from its file and line (`backfill:<file name>:<line>`), so a re-run
chunk never creates twice."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..actions.loader import load_dir
from ..actions.model import ActionFile
from ..config import load_settings
from ..events import Event
from ..service import open_pipeline

NAME = "backfill"
HELP = "send NDJSON events or CSV rows (with a column map) through the actions, resumably"
MODES = {"update": "update", "create": "create", "both": "upsert"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="NDJSON events, or a CSV file (with --object and --map)")
    parser.add_argument("--source", help="NDJSON: the source of the events (default: each line's `source`)")
    csv_options(parser)
    parser.add_argument("--chunk", type=int, default=1000, help="events per checkpoint")
    parser.add_argument("--checkpoint", help="progress file (default: FILE.progress)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (no progress bar)")


def csv_options(parser: argparse.ArgumentParser) -> None:
    """The options that turn CSV rows into an in-memory action (shared with `preview`)."""
    parser.add_argument("--object", help="CSV: the object to write")
    parser.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                        help="CSV: a field and the column that fills it (repeat)")
    parser.add_argument("--match", help="CSV: Id, a field (e.g. External_Id__c), or FIELD:domain (e.g. Website:domain)")
    parser.add_argument("--mode", choices=list(MODES), default="both", help="CSV: update, create, or both (upsert)")


def csv_action(args: argparse.Namespace, stem: str) -> ActionFile:
    """The in-memory action a CSV backfill runs: fields from columns, matched by Id, a field or a domain."""
    if not args.object or not args.map:
        raise SystemExit("a CSV file needs --object and at least one --map FIELD=COLUMN")
    fields = {}
    for item in args.map:
        field, _, column = item.partition("=")
        fields[field.strip()] = {"path": f"$.properties.{column.strip()}"}
    action: dict[str, Any] = {"name": "backfill", "when": "type exists", "object": args.object,
                              "operation": MODES[args.mode], "fields": fields}
    if args.mode != "create":
        if not args.match:
            raise SystemExit("--match is needed for update and both")
        field, _, compare = args.match.partition(":")
        column = next((c.partition("=")[2] for c in args.map if c.partition("=")[0] == field), field)
        spec: dict[str, Any] = {"path": f"$.properties.{column}"}
        if compare == "domain":
            spec["compare"] = "domain"
        action["match"] = {"any": {field: spec}}
    return ActionFile.model_validate({"source": f"backfill-{stem}", "actions": [action]})


def identity(path: Path, line: int) -> str:
    """The messageId of a backfilled event that has none: where it came from (the file's name, not its
    folder, so a moved file resumes as the same events; CSV: the data row's number)."""
    return f"backfill:{path.name}:{line}"


def events(path: Path, args: argparse.Namespace, source: str | None) -> Iterator[Event]:
    stem = path.stem
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as handle:
            for number, row in enumerate(csv.DictReader(handle), 1):
                yield Event(source or "", {"type": "track", "event": "Backfill row", "messageId": identity(path, number),
                                           "userId": f"{stem}-{number}", "properties": row})
        return
    with path.open() as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            body = json.loads(line)
            name = args.source or body.pop("source", None)
            if not body.get("messageId"):
                body["messageId"] = identity(path, number)
            yield Event(name or "", body)


def _read_checkpoint(path: Path) -> int:
    return int(path.read_text() or 0) if path.exists() else 0


def _write_checkpoint(path: Path, position: int) -> None:
    """Written only after the chunk's outcomes are recorded (via a rename, so it is never half-written)."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(str(position))
    temporary.replace(path)


def _count(path: Path) -> int:
    with path.open() as handle:
        lines = sum(1 for line in handle if line.strip())
    return lines - 1 if path.suffix.lower() == ".csv" else lines


async def backfill(args: argparse.Namespace) -> dict[str, int]:
    settings = load_settings(args.config)
    path = Path(args.file)
    checkpoint = Path(args.checkpoint or f"{path}.progress")
    done = _read_checkpoint(checkpoint)
    if path.suffix.lower() == ".csv":
        action_file = csv_action(args, path.stem)
        sources = {action_file.source: action_file}
        source = action_file.source
    else:
        sources = load_dir(Path(args.actions) if args.actions else settings.actions_dir)
        source = args.source
    total = _count(path)
    async with AsyncExitStack() as stack:
        pipeline = await open_pipeline(settings, sources, stack, "backfill")
        columns = (TextColumn("[bold]backfill"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]:.0f} events/s"), TimeRemainingColumn())
        with Progress(*columns, disable=args.json) as progress:
            task = progress.add_task("backfill", total=total, completed=done, rate=0.0)
            loop = asyncio.get_running_loop()
            started, sent = loop.time(), 0
            position = 0
            pending = 0
            for event in events(path, args, source):
                position += 1
                if position <= done:
                    continue
                await pipeline.submit(event)
                pending += 1
                if pending >= args.chunk:
                    await pipeline.drain()
                    sent += pending
                    pending = 0
                    _write_checkpoint(checkpoint, position)
                    progress.update(task, completed=position, rate=sent / max(loop.time() - started, 1e-6))
            await pipeline.drain()
            sent += pending
            _write_checkpoint(checkpoint, position)
            progress.update(task, completed=position, rate=sent / max(loop.time() - started, 1e-6))
    return {"sent": sent, "skipped_as_done": done, "position": position}


def run(args: argparse.Namespace) -> int:
    result = asyncio.run(backfill(args))
    if args.json:
        print(json.dumps({"command": "backfill", "file": args.file, **result}))
        return 0
    print(f"backfill: sent {result['sent']} events (resumed after {result['skipped_as_done']}); "
          f"see the sync log for outcomes")
    return 0
