"""Bytes held per pending operation: events decoded as the Kafka consumer decodes them, submitted to a real
Pipeline whose batcher never flushes (a linger longer than the run), measured with tracemalloc (Python's
own allocations, net of everything the run let go) and as the process's RSS growth."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import tempfile
import tracemalloc
from pathlib import Path
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


def _raw(i: int, distinct: int, rich: bool = False) -> bytes:
    """The delivery benchmark's identify event; `rich`: the same with the context analytics.js sends
    (library, page, user agent, ip, locale, campaign)."""
    u = i % distinct
    body: dict[str, Any] = {"type": "identify", "userId": f"user{u}", "messageId": f"m{i}",
                            "timestamp": "2026-01-01T00:00:00Z",
                            "traits": {"email": f"user{u}@example.com", "title": f"T{i}"}}
    if rich:
        body.update({
            "anonymousId": f"a0b1c2d3-{i:08d}-4e5f-8a9b-0c1d2e3f4a5b", "sentAt": "2026-01-01T00:00:00.120Z",
            "context": {"library": {"name": "analytics.js", "version": "next-1.70.0"}, "ip": f"203.0.113.{i % 250}",
                        "locale": "en-US", "timezone": "Europe/Berlin",
                        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                                     "Chrome/131.0.0.0 Safari/537.36",
                        "page": {"path": "/signup", "referrer": "https://www.google.com/", "search": f"?ref={i}",
                                 "title": "Sign up", "url": f"https://app.example.com/signup?ref={i}"},
                        "campaign": {"name": "winter", "source": "newsletter", "medium": "email"}},
            "integrations": {}})
    return orjson.dumps(body)


async def _hold(n: int, distinct: int, traced: bool, rich: bool) -> tuple[float, int]:
    """Bytes per pending op: RSS growth (traced False) or tracemalloc's count (traced True)."""
    sources = {"bench": load_text(ACTIONS.format(mode="rest"), "bench.yaml")}
    with tempfile.TemporaryDirectory() as folder:
        pipeline = Pipeline(sources, Delivery({}), SqliteSyncLog(Path(folder) / "sync.db"),
                            batching=BatchingConfig(linger_ms=10**9, max_pending=n + 1))
        partition = Partition("bench", 0)
        finished: list[int] = []
        gc.collect()
        if traced:
            tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0] if traced else rss_mb(os.getpid()) * 2**20
        for i in range(n):
            body = normalise_logged(orjson.loads(_raw(i, distinct, rich)), record_identity(partition, i, 1),
                                    1_700_000_000_000)
            # as the consumer passes its tracker's method and the record's position
            await pipeline.submit(Event("bench", body), finished.append, done_args=(i,))
        gc.collect()
        after = tracemalloc.get_traced_memory()[0] if traced else rss_mb(os.getpid()) * 2**20
        if traced:
            tracemalloc.stop()
        assert pipeline.batcher.pending == n and not finished
        return (after - before) / n, pipeline.batcher.pending


def run(n: int = 20_000, distinct: int = 10_000) -> dict[str, Any]:
    """Hold `n` pending operations (identify events of `distinct` users, far apart) and report bytes per op,
    for the delivery benchmark's event and for one with analytics.js's context."""
    out: dict[str, Any] = {"benchmark": "pending_memory", "pending": n}
    rss, _ = asyncio.run(_hold(n, distinct, False, False))  # RSS first: it grows only in a fresh heap
    out["rss_bytes_per_pending_op"] = round(rss)
    for name, rich in (("", False), ("rich_", True)):
        traced, _ = asyncio.run(_hold(n, distinct, True, rich))
        out[f"{name}bytes_per_pending_op"] = round(traced)
    return out


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)))
