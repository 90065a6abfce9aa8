"""Bytes held per pending operation: events decoded as the Kafka consumer decodes them, submitted to a real
Pipeline whose batcher never flushes (a linger longer than the run), measured with tracemalloc (Python's
own allocations, net of everything the run let go) and as the process's RSS growth."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import tracemalloc
from typing import Any

import orjson

from destination.actions.loader import load_text
from destination.config import BatchingConfig
from destination.deliver import Delivery
from destination.eventlog.base import Partition, record_identity
from destination.events import Event
from destination.ingest.segment import normalise_logged
from destination.pipeline import Pipeline
from destination.synclog.sqlite import SqliteSyncLog

from .delivery_run import ACTIONS
from .processes import rss_mb


def _raw(i: int, distinct: int) -> bytes:
    u = i % distinct
    return orjson.dumps({"type": "identify", "userId": f"user{u}", "messageId": f"m{i}",
                         "timestamp": "2026-01-01T00:00:00Z",
                         "traits": {"email": f"user{u}@example.com", "title": f"T{i}"}})


async def _measure(n: int, distinct: int) -> dict[str, Any]:
    import os
    import tempfile
    from pathlib import Path

    sources = {"bench": load_text(ACTIONS.format(mode="rest"), "bench.yaml")}
    with tempfile.TemporaryDirectory() as folder:
        sync_log = SqliteSyncLog(Path(folder) / "sync.db")
        pipeline = Pipeline(sources, Delivery({}), sync_log,
                            batching=BatchingConfig(linger_ms=10**9, max_pending=n + 1))
        partition = Partition("bench", 0)
        finished: list[int] = []
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        rss_before = rss_mb(os.getpid())
        for i in range(n):
            body = normalise_logged(orjson.loads(_raw(i, distinct)), record_identity(partition, i, 1), 1_700_000_000_000)
            await pipeline.submit(Event("bench", body), lambda i=i: finished.append(i))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
        rss_after = rss_mb(os.getpid())
        top = tracemalloc.take_snapshot().statistics("lineno")[:12] if os.environ.get("PENDING_TOP") else []
        tracemalloc.stop()
        assert pipeline.batcher.pending == n and not finished
        for stat in top:
            print(stat, file=sys.stderr)
        return {"benchmark": "pending_memory", "pending": n, "bytes_per_pending_op": round(held / n),
                "rss_bytes_per_pending_op": round((rss_after - rss_before) * 2**20 / n)}


def run(n: int = 20_000, distinct: int = 10_000) -> dict[str, Any]:
    """Hold `n` pending operations (identify events of `distinct` users, far apart) and report bytes per op."""
    return asyncio.run(_measure(n, distinct))


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)))
