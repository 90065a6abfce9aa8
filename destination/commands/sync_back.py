"""`destination sync-back status`: where each synced object's change feed stands — its watermark, how far
behind now it is, when it last polled, what it published and suppressed as echoes, and its last error."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..actions.loader import load_dir
from ..config import load_settings
from ..sync_back.changes import parse_modstamp
from ..sync_back.runner import deleted_key
from ..synclog import open_sync_log

NAME = "sync-back"
HELP = "the Salesforce → app change feed: `status` shows each object's watermark, lag and last error"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="sync_back_command", required=True)
    status = sub.add_parser("status", help="watermark, lag, counters and last error per synced object")
    status.add_argument("--json", action="store_true", help="print the status as JSON")


async def status(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One row per synced (source, object) of the action files, with its state from the sync log."""
    settings = load_settings(args.config)
    sources = load_dir(Path(args.actions) if args.actions else settings.actions_dir)
    now = datetime.now(UTC)
    async with open_sync_log(settings.sync_log_url) as sync_log:
        states = {(s.source, s.object): s for s in await sync_log.sync_back_states()}
    rows = []
    for name, source in sources.items():
        for spec in source.sync_back.objects if source.sync_back else []:
            state = states.get((name, spec.object))
            deleted = states.get((name, deleted_key(spec.object)))
            watermark = state.watermark if state else None
            errors = [s.last_error for s in (state, deleted) if s is not None and s.last_error]
            rows.append({
                "source": name, "object": spec.object, "watermark": watermark,
                "lag_seconds": round((now - parse_modstamp(watermark)).total_seconds(), 1) if watermark else None,
                "last_poll": state.polled_at.isoformat() if state and state.polled_at else None,
                "deleted_watermark": deleted.watermark if deleted else None,
                "published": (state.published if state else 0) + (deleted.published if deleted else 0),
                "echoes_suppressed": state.echoes if state else 0,
                "last_error": errors[0] if errors else None,
            })
    return rows


def run(args: argparse.Namespace) -> int:
    rows = asyncio.run(status(args))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 1 if any(r["last_error"] for r in rows) else 0
    if not rows:
        print("no source has sync_back: nothing is synced from Salesforce")
        return 0
    for r in rows:
        lag = f"{r['lag_seconds']:.0f} s" if r["lag_seconds"] is not None else "-"
        print(f"{r['source']}/{r['object']}: watermark {r['watermark'] or 'not started'} (lag {lag}), "
              f"last poll {r['last_poll'] or 'never'}, published {r['published']}, "
              f"echoes suppressed {r['echoes_suppressed']}, last error: {r['last_error'] or 'none'}")
    return 1 if any(r["last_error"] for r in rows) else 0
