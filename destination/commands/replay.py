"""`destination replay`: re-drive failed (or dead-lettered) events after a config or data fix; their
sync-log rows are updated with the new outcomes.

A create that failed UNRESOLVED_CREATE may exist in Salesforce (its fate was never known and nothing could
look it up): replay leaves it alone unless `--resend-unresolved` says the operator checked the org. Other
creates are safe: a create whose intent is still open is reconciled by lookup before it is sent."""

from __future__ import annotations

import argparse
import asyncio
import json
from contextlib import AsyncExitStack
from pathlib import Path

from ..actions.loader import load_dir
from ..config import load_settings
from ..events import Event
from ..outcomes import Status
from ..service import open_pipeline
from ..synclog.base import SyncLogFilter
from ..synclog.filters import parse_time
from ..write import UNRESOLVED_CREATE

NAME = "replay"
HELP = "re-drive failed or dead-lettered events (filter by error code, object, source, time)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", default="failed", choices=[s.value for s in Status],
                        help="which outcomes to re-drive (default: failed)")
    parser.add_argument("--error-code", help="only this Salesforce (or mapping) error code")
    parser.add_argument("--object", help="only this object")
    parser.add_argument("--source", help="only this source")
    parser.add_argument("--since", help="only outcomes recorded since this ISO time")
    parser.add_argument("--until", help="only outcomes recorded until this ISO time")
    parser.add_argument("--dead-letters", action="store_true", help="re-drive the dead-letter queue instead")
    parser.add_argument("--limit", type=int, default=100_000)
    parser.add_argument("--resend-unresolved", action="store_true",
                        help=f"also resend {UNRESOLVED_CREATE} creates (only after checking they are not in the org)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


async def replay(args: argparse.Namespace) -> dict[str, int]:
    settings = load_settings(args.config)
    sources = load_dir(Path(args.actions) if args.actions else settings.actions_dir)
    async with AsyncExitStack() as stack:
        pipeline = await open_pipeline(settings, sources, stack, "replay")
        sync_log = pipeline.sync_log
        replayed = held = 0
        resend_unresolved = getattr(args, "resend_unresolved", False)
        if args.dead_letters:
            letters = [d for d in await sync_log.dead_letters(limit=args.limit)
                       if (not args.source or d.source == args.source)
                       and (not args.error_code or d.error_code == args.error_code)]
            kept = [d for d in letters if resend_unresolved or d.error_code != UNRESOLVED_CREATE]
            held = len(letters) - len(kept)
            letters = kept
            for letter in letters:
                event = letter.event()
                if event is not None and event.source in sources:
                    await pipeline.submit(event)
                    replayed += 1
            await pipeline.drain()
            await sync_log.mark_replayed([d.id for d in letters])
        else:
            where = SyncLogFilter(status=Status(args.status), error_code=args.error_code, object=args.object,
                                  source=args.source, since=parse_time(args.since), until=parse_time(args.until))
            rows = await sync_log.rows(where, limit=args.limit)
            kept_rows = [r for r in rows if resend_unresolved or r.error_code != UNRESOLVED_CREATE]
            held = len(rows) - len(kept_rows)
            seen: set[tuple[str, str, str]] = set()
            for row in sorted(kept_rows, key=lambda r: r.id):
                if (row.source, row.message_id, row.action) in seen:  # on_many_matches: all has a row per record
                    continue
                seen.add((row.source, row.message_id, row.action))
                await pipeline.submit(Event(row.source, row.event), only={row.action})
                replayed += 1
            await pipeline.drain()
        counts = await sync_log.counts()
    return {"replayed": replayed, "held": held, **{k.value: v for k, v in counts.items()}}


def run(args: argparse.Namespace) -> int:
    result = asyncio.run(replay(args))
    if args.json:
        print(json.dumps({"command": "replay", "replayed": result.pop("replayed"), "held": result.pop("held"),
                          "sync_log": {s.value: result.get(s.value, 0) for s in Status}}))
        return 0
    print(f"replayed {result['replayed']} events; sync log now: succeeded {result.get('succeeded', 0)}, "
          f"skipped {result.get('skipped', 0)}, failed {result.get('failed', 0)}")
    if result["held"]:
        print(f"held back {result['held']} {UNRESOLVED_CREATE} creates that may already exist in Salesforce: "
              "check the org, then replay with --resend-unresolved to send them")
    return 0
