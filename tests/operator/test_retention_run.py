"""`destination run` prunes at start: a real process, started over a sync log and an embedded event log that
hold rows older than the configured ages, deletes them (and nothing younger), logs a line with the counts
and reports them in /metrics."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from destination_process import DestinationProcess
from running_emulator import RunningEmulator, free_port
from settings_support import OPERATOR, settings_file

from destination.eventlog.sqlite import SqliteEventLog, SqliteLogConsumer
from destination.events import Event
from destination.outcomes import Outcome
from destination.synclog import open_sync_log


async def _old_rows(tmp_path: Path) -> None:
    """m-old (400 days), m-new (now) in the sync log; three events, committed and 30 days old, in the log."""
    async with open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        await log.record([Outcome.skipped(Event("web", {"type": "track", "messageId": f"m-{age}"}), "NO_ACTION_MATCHED")
                          for age in ("old", "new")])
    async with SqliteEventLog(tmp_path / "events.db") as events:
        await events.append([Event("web", {"type": "track", "userId": "u1", "event": "E", "messageId": f"e-{n}"})
                             for n in range(3)])
    reader = SqliteLogConsumer(tmp_path / "events.db")  # the name `destination run` consumes under
    await reader.start()
    records = await reader.fetch(10, wait_seconds=0)
    await reader.commit({r.partition: r.offset + 1 for r in records})
    await reader.stop()
    db = sqlite3.connect(tmp_path / "sync.db")
    db.execute("UPDATE sync_log SET updated_at = ? WHERE message_id = 'm-old'",
               ((datetime.now(UTC) - timedelta(days=400)).isoformat(),))
    db.commit()
    db.close()
    db = sqlite3.connect(tmp_path / "events.db")
    db.execute("UPDATE events SET appended_at = ?", (time.time() - 30 * 86_400,))
    db.commit()
    db.close()


def test_a_delivering_process_prunes_old_rows_at_start_and_counts_them(
        tmp_path: Path, tls_emulator: RunningEmulator) -> None:
    asyncio.run(_old_rows(tmp_path))
    config = settings_file(tmp_path, tls_emulator, "retention: {sync_log_days: 30, event_log_days: 7}\n")
    process = DestinationProcess(config, free_port(), tmp_path / "run.log")
    process.start()
    try:
        deadline = time.monotonic() + 20
        while "retention: pruned" not in (tmp_path / "run.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        metrics = httpx.get(f"http://127.0.0.1:{process.port}/metrics", headers=OPERATOR).text
    finally:
        process.stop()
    log = (tmp_path / "run.log").read_text()
    assert "retention: pruned 1 sync-log rows (0 of them failed), 0 dead letters, 3 event-log events" in log, log
    assert 'destination_retention_pruned_rows_total{store="sync_log"} 1.0' in metrics
    assert 'destination_retention_pruned_rows_total{store="event_log"} 3.0' in metrics
    db = sqlite3.connect(tmp_path / "sync.db")
    assert db.execute("SELECT message_id FROM sync_log").fetchall() == [("m-new",)]
    db.close()
