"""The coalescing window: full batches wait (while the batcher has room, up to `window_ms`) for later events
of their records, so a record's events far apart in the stream make one write; held batches go out oldest
first when the batcher nearly fills, when their window passes, or when the stream pauses. Pending
operations carry a stand-in event; the whole event comes back for its outcome rows."""

from __future__ import annotations

import asyncio
import gc
import math
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
from delivery_support import ops_for

from destination.actions.loader import load_text
from destination.batcher import Batcher
from destination.config import BatchingConfig
from destination.deliver import Delivery
from destination.events import Event
from destination.operations import RecordOp
from destination.outcomes import Status
from destination.pipeline import Pipeline
from destination.synclog import open_sync_log
from destination.synclog.base import SyncLogFilter

UPSERT = """    object: Lead
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields: {Email: $.traits.email, LastName: {path: $.traits.name, default: X}, Company: n/a}
"""
SOURCE = load_text("source: web\nactions:\n  - name: leads\n    when: type = \"identify\"\n" + UPSERT, "web.yaml")


def _far(records: int, rounds: int = 2) -> list[RecordOp]:
    """`rounds` events per record, each record's events `records` events apart."""
    return ops_for(UPSERT, [{"traits": {"email": f"u{i % records}@x.example", "name": f"n{i}"}}
                            for i in range(records * rounds)])


class _Written:
    def __init__(self, seconds: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.seconds = seconds

    async def flush(self, batch: list[RecordOp]) -> None:
        await asyncio.sleep(self.seconds)
        self.batches.append([op.event.message_id for op in batch])


def _emails(batch: list[RecordOp]) -> set[str]:
    return {op.match.matchers()[0].value for op in batch if op.match is not None}


async def test_a_records_events_far_apart_join_one_batch_inside_the_window() -> None:
    ops = _far(10)
    seen: list[set[str]] = []
    sizes: list[int] = []

    async def flush(batch: list[RecordOp]) -> None:
        seen.append(_emails(batch))
        sizes.append(len(batch))

    batcher = Batcher(flush, rest_size=2, linger_ms=10_000, window_ms=60_000, max_pending=1_000)
    for op in ops:
        await batcher.add(op)
    await asyncio.sleep(0.05)
    assert seen == [], "full batches were written while the batcher had room and their window had not passed"
    await batcher.drain()
    assert sizes == [4] * 5  # 2 records per batch, both events of each
    assert [sorted(s) for s in seen] == [[f"u{i}@x.example", f"u{i + 1}@x.example"] for i in range(0, 10, 2)]


async def test_without_a_window_a_full_batch_is_written_when_one_more_record_arrives() -> None:
    seen: list[set[str]] = []

    async def flush(batch: list[RecordOp]) -> None:
        seen.append(_emails(batch))

    batcher = Batcher(flush, rest_size=2, linger_ms=10_000, window_ms=0)
    for op in _far(10):
        await batcher.add(op)
    await batcher.drain()
    assert len(seen) == 10  # no coalescing across 10 events: each record written twice


async def test_a_nearly_full_batcher_writes_its_oldest_held_batches_and_the_rest_still_coalesce() -> None:
    written: list[list[RecordOp]] = []

    async def flush(batch: list[RecordOp]) -> None:
        written.append(batch)

    # room for 24 ops, two batches (2 x rest_size) of it kept free for writes in flight: 20 held at most
    batcher = Batcher(flush, rest_size=2, linger_ms=10_000, window_ms=60_000, max_pending=24)
    ops = _far(10)
    for op in ops:
        await batcher.add(op)
        await asyncio.sleep(0)
        assert batcher.pending <= 24
    await batcher.drain()
    assert sum(len(b) for b in written) == 20
    assert len(written) == 5  # 10 records 10 events apart fit: every record written once, with both events
    order = [op.event.message_id for b in written for op in b]
    assert order.index(ops[0].event.message_id) < order.index(ops[2].event.message_id)  # oldest first


async def test_the_window_bounds_how_long_a_full_batch_waits() -> None:
    written = _Written()
    batcher = Batcher(written.flush, rest_size=2, linger_ms=10_000, window_ms=100, max_pending=1_000)
    ops = _far(3, rounds=1)
    for op in ops:  # 3 records: the first two make a full batch, the third starts the next one
        await batcher.add(op)
    await asyncio.sleep(0.03)
    assert written.batches == []
    later = ops_for(UPSERT, [{"traits": {"email": f"v{i}@x.example"}} for i in range(40)])
    for op in later:  # events of other records keep coming (the stream does not pause), but the window passes
        if written.batches:
            break
        await batcher.add(op)
        await asyncio.sleep(0.01)
    assert written.batches and written.batches[0] == [op.event.message_id for op in ops[:2]]
    await batcher.drain()


async def test_held_batches_are_written_once_the_stream_pauses_for_a_linger() -> None:
    written = _Written()
    batcher = Batcher(written.flush, rest_size=2, linger_ms=50, window_ms=60_000, max_pending=1_000)
    for op in _far(6):
        await batcher.add(op)
    for _ in range(100):
        if len(written.batches) == 3:
            break
        await asyncio.sleep(0.01)
    assert [len(b) for b in written.batches] == [4, 4, 4]


async def test_a_hot_records_events_beyond_one_batch_are_written_in_event_order() -> None:
    written = _Written(0.001)
    batcher = Batcher(written.flush, rest_size=2, linger_ms=10_000, window_ms=60_000, max_pending=1_000)
    ops = ops_for(UPSERT, [{"traits": {"email": "hot@x.example", "name": f"n{i}"}} for i in range(23)])
    for op in ops:
        await batcher.add(op)
    await batcher.drain()
    assert [len(b) for b in written.batches] == [10, 10, 3]  # OPS_PER_RECORD x rest_size per batch
    assert [m for b in written.batches for m in b] == [op.event.message_id for op in ops]


async def test_far_apart_events_cost_one_write_per_record_through_the_pipeline_defaults(
        delivery: Delivery, tls_emulator: Any, tmp_path: Path) -> None:
    """2,000 identify events on 1,000 e-mails, each e-mail's two events 1,000 apart: with the default window
    and max_pending they coalesce, so the cost is the floor of 1,000 records (5 writes, 5 queries)."""
    n, distinct = 2_000, 1_000
    async with open_sync_log(f"sqlite:///{tmp_path / 's.db'}") as sync_log:
        pipeline = Pipeline({"web": SOURCE}, delivery, sync_log, batching=BatchingConfig(linger_ms=200, window_ms=60_000))
        before = dict(tls_emulator.state.usage.by_endpoint)
        for i in range(n):
            await pipeline.submit(Event("web", {"type": "identify", "messageId": f"m{i}",
                                                "traits": {"email": f"user{i % distinct}@x.example",
                                                           "name": f"n{i}"}}))
        await pipeline.drain()
        assert (await sync_log.counts())[Status.SUCCEEDED] == n
    after = tls_emulator.state.usage.by_endpoint
    calls = {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}
    assert calls.get("composite/sobjects") == math.ceil(distinct / 200)
    assert calls.get("query") == math.ceil(distinct / 200)
    leads = tls_emulator.state.store.records("Lead")
    assert len(leads) == distinct
    assert {lead["LastName"] for lead in leads} == {f"n{i}" for i in range(distinct, n)}  # the later event's


async def test_a_pending_operation_lets_go_of_its_event_and_the_outcome_row_keeps_all_of_it(
        delivery: Delivery, tmp_path: Path) -> None:
    body = {"type": "identify", "messageId": "kept", "timestamp": "2026-01-01T00:00:00Z",
            "context": {"page": {"url": "https://x.example/a"}, "ip": "1.2.3.4"},
            "traits": {"email": "kept@x.example", "name": "Kept", "plan": {"tier": "gold"}}}
    async with open_sync_log(f"sqlite:///{tmp_path / 's.db'}") as sync_log:
        pipeline = Pipeline({"web": SOURCE}, delivery, sync_log, batching=BatchingConfig(linger_ms=10_000, window_ms=60_000))
        await pipeline.submit(Event("web", body))
        gc.collect()
        assert pipeline.batcher.pending == 1
        assert not [r for r in gc.get_referrers(body) if isinstance(r, Event)], "a pending op holds the event"
        await pipeline.drain()
        row = (await sync_log.rows(SyncLogFilter(message_id="kept")))[0]
    assert row.status is Status.SUCCEEDED and row.email == "kept@x.example"
    assert row.event == body


_CONTEXT = {"library": {"name": "analytics.js", "version": "next-1.70.0"}, "locale": "en-US",
            "timezone": "Europe/Berlin", "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
                                                      "Gecko) Chrome/131.0.0.0 Safari/537.36",
            "campaign": {"name": "winter", "source": "newsletter", "medium": "email"}}


async def test_a_pending_operation_of_an_analytics_js_event_holds_under_3_kb(delivery: Delivery,
                                                                            tmp_path: Path) -> None:
    """Bytes per pending op (tracemalloc: everything the pending ops keep, net of what the run let go) for an
    identify event with the context analytics.js sends: 3.6 KB when each op kept the decoded event (2.3 KB now)."""
    n = 2_000
    async with open_sync_log(f"sqlite:///{tmp_path / 's.db'}") as sync_log:
        pipeline = Pipeline({"web": SOURCE}, delivery, sync_log,
                            batching=BatchingConfig(linger_ms=10**9, max_pending=n + 1, window_ms=60_000))
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(n):
                context = orjson.loads(orjson.dumps(_CONTEXT))  # each event decoded on its own, as from the log
                context["ip"] = f"203.0.113.{i % 250}"
                context["page"] = {"path": "/signup", "referrer": "https://www.google.com/", "search": f"?ref={i}",
                                   "title": "Sign up", "url": f"https://app.example.com/signup?ref={i}"}
                await pipeline.submit(Event("web", {
                    "type": "identify", "userId": f"user{i}", "messageId": f"m{i}",
                    "anonymousId": f"a0b1c2d3-{i:08d}-4e5f-8a9b-0c1d2e3f4a5b", "context": context,
                    "timestamp": "2026-01-01T00:00:00.000Z", "receivedAt": "2026-01-01T00:00:01.000Z",
                    "traits": {"email": f"user{i}@example.com", "name": f"T{i}"}}), lambda: None)
            gc.collect()
            held = (tracemalloc.get_traced_memory()[0] - before) / n
        finally:
            tracemalloc.stop()
        assert pipeline.batcher.pending == n
        print(f"\n{held:.0f} bytes per pending operation")
        assert held < 3_000
        await pipeline.drain()
