"""bench/synclog_split: the SQLite store's record() statements timed apart, on a real store."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from bench.synclog_split import WARM_BATCHES, _run
from bench.synclog_write import BATCH


def test_the_split_runs_the_stores_own_statements_and_commits_every_timed_row(tmp_path: Path) -> None:
    result = asyncio.run(_run(tmp_path, 2))
    assert result["outcomes"] == 2 * BATCH
    assert all(result[f"{step}_us_per_outcome"] > 0 for step in ("prepare", "events_insert", "outcomes_upsert",
                                                                   "commit"))
    assert result["wal_bytes_per_commit"] > 4096  # a commit of 200 rows writes pages to the WAL
    with sqlite3.connect(tmp_path / "sync.db") as db:  # warm-up and timed batches are all in the table
        assert db.execute("SELECT COUNT(*) FROM sync_log").fetchone()[0] == (WARM_BATCHES + 2) * BATCH
        assert db.execute("SELECT COUNT(*) FROM sync_log_events").fetchone()[0] == (WARM_BATCHES + 2) * BATCH


def test_a_new_event_with_a_random_message_id_costs_the_wal_less_than_a_page(tmp_path: Path) -> None:
    # UUID messageIds (most Segment libraries): keyed by (source, messageId), each new event went into a random
    # page of the events table, written whole to the WAL: ~6.6 KB per event here; appended in id order, ~2.4 KB
    result = asyncio.run(_run(tmp_path, 5, "random"))
    assert result["wal_bytes_per_commit"] / BATCH < 4096
