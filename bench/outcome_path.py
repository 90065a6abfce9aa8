"""The outcome side of the data path alone, in process: events submitted to a real Pipeline (route, map, the
ticket), each batch's operations given the outcomes a delivery returns (succeeded upserts), then `_collect` and
`_finish` (sync-log rows stored in a real SQLite sync log, metrics, acks). Prints CPU per event: the main
thread's (thread_time) and the whole process's (process_time, i.e. with SQLite's worker thread), for the
submit step and for collect+finish (the garbage collector set as `destination run` sets it); and `add_main`, the main thread's CPU of a real Batcher's `add` given
the same operations (its batches flushed to nowhere: what submit adds to its own figure in the process); and
`expand_main`, where pending ops are packed, mapping a batch's ops whole as its flush does. Run: `python -m bench.outcome_path [--events N] [--runs R]`.

The events and the action are the delivery benchmark's (bench/delivery_run.py, `near` repeats)."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from destination.actions.loader import load_text
from destination.batcher import Batcher
from destination.commands.run import _settle_garbage_collector
from destination.events import Event
from destination.operations import RecordOp
from destination.outcomes import Outcome
from destination.pipeline import Pipeline
from destination.synclog import open_sync_log

from .delivery_run import ACTIONS, _events

BATCH = 200  # operations per delivered batch (the REST batch size)


class Collector:
    """Stands in for the batcher: keeps the operations submit hands it, and what it asks to hold for each."""

    def __init__(self) -> None:
        self.ops: list[RecordOp] = []
        self.held: list[Any] = []
        self.pending = 0

    async def add(self, op: RecordOp, held: Any = None) -> None:
        self.ops.append(op)
        self.held.append(op if held is None else held)


async def _run(events: list[Event], folder: Path) -> dict[str, float]:
    source = load_text(ACTIONS.format(mode="rest"), "bench.yaml")
    log = open_sync_log(f"sqlite:///{folder / 'sync.db'}")
    acked = 0

    def done() -> None:
        nonlocal acked
        acked += 1

    async with log:
        delivery: Any = SimpleNamespace(metrics=None, budget=SimpleNamespace(paused=False))
        pipeline = Pipeline({"bench": source}, delivery, log)
        collector = Collector()
        pipeline.batcher = collector  # type: ignore[assignment]
        flushed = 0

        async def flush(batch: list[RecordOp]) -> None:
            nonlocal flushed
            flushed += len(batch)

        batcher = Batcher(flush, window_ms=0)  # every full batch written at once: no window to hold it in
        submit_main = submit_all = finish_main = finish_all = add_main = expand_main = 0.0
        expand = getattr(pipeline, "_expand", None)  # a tree that packs pending ops maps them whole when written
        for start in range(0, len(events), BATCH):
            t0, c0 = time.thread_time(), time.process_time()
            for event in events[start:start + BATCH]:
                await pipeline.submit(event, done)
            t1, c1 = time.thread_time(), time.process_time()
            batch, collector.ops = collector.ops, []
            held, collector.held = collector.held, []
            a0 = time.thread_time()
            for op, item in zip(batch, held, strict=True):
                await batcher.add(op) if expand is None else await batcher.add(op, item)
            add_main += time.thread_time() - a0
            if expand is not None:
                e0 = time.thread_time()
                batch, _ = expand(held)
                expand_main += time.thread_time() - e0
            # a user's two events (`near`) write one record; record Ids grow as Salesforce hands them out
            outcomes = [Outcome.succeeded(op.event, record_id=f"00Q{(start + n) // 2:015d}", created=False,
                                          action=op.action, object=op.object, operation=op.operation.value)
                        for n, op in enumerate(batch)]
            t2, c2 = time.thread_time(), time.process_time()
            finished = pipeline._collect(batch, outcomes)
            await pipeline._finish(finished)
            t3, c3 = time.thread_time(), time.process_time()
            submit_main += t1 - t0
            submit_all += c1 - c0
            finish_main += t3 - t2
            finish_all += c3 - c2
        await batcher.drain()
    assert flushed == len(events), (flushed, len(events))
    assert acked == len(events), (acked, len(events))
    n = len(events)
    return {"submit_main": submit_main / n * 1e6, "submit_all": submit_all / n * 1e6,
            "finish_main": finish_main / n * 1e6, "finish_all": finish_all / n * 1e6,
            "add_main": add_main / n * 1e6, "expand_main": expand_main / n * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.outcome_path")
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    events = _events(args.events, args.events // 2, "near")
    _settle_garbage_collector()  # the collector as `destination run` sets it (the events stand for what arrives)
    results = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="outcome-bench-") as folder:
            results.append(asyncio.run(_run(events, Path(folder))))
        print(json.dumps({k: round(v, 2) for k, v in results[-1].items()}), flush=True)
    print(json.dumps({"median_us_per_event": {k: round(statistics.median(r[k] for r in results), 2)
                                              for k in results[0]}}))


if __name__ == "__main__":
    main()
