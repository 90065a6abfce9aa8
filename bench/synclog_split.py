"""The SQLite sync log's `record()` taken apart: the same statements it runs (row preparation, keeping the
events, the outcomes upsert, the COMMIT under its own pragmas), each timed alone in CPU per outcome, and the
WAL bytes one commit of a batch writes. What `python -m bench.synclog_write` reports as one figure, split so
a change can be aimed at the part that costs. Run: `python -m bench.synclog_split [--batches N]
[--ids sequential|random]` (see synclog_write.message_id)."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from destination.sqlite_rows import insert_rows_in_transaction
from destination.synclog import sqlite as store
from destination.synclog.base import WRITTEN_COLUMNS, event_rows, outcome_row

from .synclog_write import BATCH, _outcomes

WARM_BATCHES = 20  # rows already in the tables before the timed batches (B-trees of some depth)


async def _run(folder: Path, batches: int, ids: str = "sequential") -> dict[str, Any]:
    log = store.SqliteSyncLog(folder / "sync.db")
    await log.open()
    width = len(WRITTEN_COLUMNS)
    try:
        for b in range(WARM_BATCHES):
            await log.record(_outcomes(b * BATCH, "small", ids))
        db: Any = log._db  # the store's own connection and pragmas (WAL, synchronous=FULL)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA wal_autocheckpoint=0")  # the WAL keeps every commit of the run: its size is measured
        spent = dict.fromkeys(("prepare", "events_insert", "outcomes_upsert", "commit"), 0.0)
        for b in range(WARM_BATCHES, WARM_BATCHES + batches):
            outcomes = _outcomes(b * BATCH, "small", ids)
            t0 = time.process_time()
            params: list[Any] = []
            for outcome in outcomes:
                params += (*outcome_row(outcome, "2026-01-01T00:00:00+00:00"), None)
            events = event_rows(outcomes)
            t1 = time.process_time()
            db.execute("BEGIN IMMEDIATE")
            store._keep_events(db, events, params)
            t2 = time.process_time()
            insert_rows_in_transaction(db, store._upsert_sql, params, width, store._ROWS_PER_STATEMENT)
            t3 = time.process_time()
            db.execute("COMMIT")
            t4 = time.process_time()
            for name, seconds in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                spent[name] += seconds
        wal = (folder / "sync.db-wal").stat().st_size
    finally:
        await log.close()
    rows = batches * BATCH
    return {"benchmark": "synclog_split", "store": "sqlite", "ids": ids, "outcomes": rows,
            **{f"{name}_us_per_outcome": round(seconds / rows * 1e6, 2) for name, seconds in spent.items()},
            "wal_bytes_per_commit": round(wal / batches)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.synclog_split")
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--ids", choices=["sequential", "random"], default="sequential")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="synclog-split-") as folder:
        print(json.dumps(asyncio.run(_run(Path(folder), args.batches, args.ids))))


if __name__ == "__main__":
    main()
