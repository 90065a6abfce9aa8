"""The deliver step alone, in process: near-pattern operations (the delivery benchmark's events and action, mapped
by a real Pipeline) delivered in batches of 200 by the real Delivery (lookups, plan, fit, write, a real SQLite
sync log) to the emulator in its own process (its CPU is not counted). Prints CPU per event of `deliver`: the
main thread's (thread_time) and the whole process's (process_time, i.e. with SQLite's worker thread); and the
main thread's split into `io_main` (inside HTTP requests and sync-log calls) and `own_main` (the rest: the
step's own code, the steadier figure on a busy machine).
Run: `python -m bench.deliver_step [--events N] [--runs R] [--batch OPS] [--repeats near|far]`.

The emulator starts empty each run, so an e-mail's first batch creates its Lead and a later one updates it."""

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
from destination.budget import Budget
from destination.config import load_settings
from destination.deliver import Delivery
from destination.events import Event
from destination.operations import RecordOp
from destination.outcomes import Status
from destination.pipeline import Pipeline
from destination.service import client_for
from destination.synclog import open_sync_log

from .delivery_run import ACTIONS, _events, start_emulator, write_config
from .outcome_path import BATCH, Collector


async def _ops(events: list[Event], folder: Path) -> list[RecordOp]:
    """The events mapped to operations by a real Pipeline (route, map; packed ops mapped whole, as a flush
    does), in event order."""
    source = load_text(ACTIONS.format(mode="rest"), "bench.yaml")
    async with open_sync_log(f"sqlite:///{folder / 'map.db'}") as log:
        delivery: Any = SimpleNamespace(metrics=None, budget=SimpleNamespace(paused=False))
        pipeline = Pipeline({"bench": source}, delivery, log)
        collector = Collector()
        pipeline.batcher = collector  # type: ignore[assignment]
        for event in events:
            await pipeline.submit(event, lambda: None)
        ops, _ = pipeline._expand(collector.held)  # packed ops mapped whole, as when their batch is written
        return ops


class _Timed:
    """Main-thread CPU spent inside the wrapped coroutine methods (HTTP requests, sync-log calls): the
    step's own code is the rest, a steadier figure on a busy machine than the total."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0

    def wrap(self, target: Any, names: list[str]) -> None:
        for name in names:
            setattr(target, name, self._timed(getattr(target, name)))

    def _timed(self, method: Any) -> Any:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            start = time.thread_time()
            try:
                return await method(*args, **kwargs)
            finally:
                self._depth -= 1
                if not self._depth:  # nested calls count once
                    self.seconds += time.thread_time() - start
        return timed


async def _run(events: list[Event], folder: Path, size: int = BATCH) -> dict[str, float]:
    emulator, port = start_emulator(folder)
    try:
        settings = load_settings(write_config(folder, port, "rest", None))
        ops = await _ops(events, folder)
        async with open_sync_log(settings.sync_log_url) as sync_log, \
                client_for(settings, settings.connections["default"], "default") as client:
            delivery = Delivery({"default": client}, sync_log=sync_log,
                                budget=Budget(settings.budget.ceiling, settings.budget.recheck_seconds))
            await client.describe.get("Lead")  # start-up (token, describe) is not the step's
            io = _Timed()
            io.wrap(client, ["json"])  # an instance attribute: every request of the records API and queries
            io.wrap(sync_log, [name for name in dir(type(sync_log)) if not name.startswith("_") and
                               asyncio.iscoroutinefunction(getattr(sync_log, name))])
            main = every = 0.0
            succeeded = created = 0
            for start in range(0, len(ops), size):
                batch = ops[start:start + size]
                t0, c0 = time.thread_time(), time.process_time()
                outcomes = await delivery.deliver(batch)
                main += time.thread_time() - t0
                every += time.process_time() - c0
                succeeded += sum(o.status is Status.SUCCEEDED for o in outcomes)
                created += sum(bool(o.created) for o in outcomes)
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    n = len(ops)
    assert succeeded == n, (succeeded, n)
    return {"deliver_main": main / n * 1e6, "deliver_all": every / n * 1e6,
            "io_main": io.seconds / n * 1e6, "own_main": (main - io.seconds) / n * 1e6, "created": created}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.deliver_step")
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repeats", choices=["near", "far"], default="near")
    parser.add_argument("--batch", type=int, default=BATCH, help="operations per deliver() call")
    args = parser.parse_args()
    events = _events(args.events, args.events // 2, args.repeats)
    results = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="deliver-bench-") as folder:
            results.append(asyncio.run(_run(events, Path(folder), args.batch)))
        print(json.dumps({k: round(v, 2) for k, v in results[-1].items()}), flush=True)
    print(json.dumps({"median_us_per_event": {k: round(statistics.median(r[k] for r in results), 2)
                                              for k in results[0]}}))


if __name__ == "__main__":
    main()
