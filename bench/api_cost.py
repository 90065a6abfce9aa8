"""End to end after the log, REST mode: N identify events (N/2 distinct e-mails) through the pipeline into
the emulator over HTTPS. Reports wall time, events/s, the emulator's API call count against the floor
ceil(records/200) + lookups, and destination CPU per 1,000 events."""

from __future__ import annotations

import asyncio
import math
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from destination.actions.loader import load_text
from destination.config import BatchingConfig
from destination.deliver import Delivery
from destination.events import Event
from destination.pipeline import Pipeline
from destination.salesforce.client import SalesforceClient
from destination.salesforce.connection import AuthMethod, AuthSettings, Connection
from destination.synclog import open_sync_log
from salesforce_emulator.server import serve_in_thread
from salesforce_emulator.state import build_state

SOURCE = """source: web
actions:
  - name: leads
    when: type = "identify"
    object: Lead
    operation: upsert
    mode: {mode}
    match: {{any: {{Email: $.traits.email}}}}
    fields: {{Email: $.traits.email, LastName: {{path: $.traits.name, default: X}}, Company: n/a,
             Title: $.traits.title}}
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _run(n: int, mode: str, folder: Path) -> dict[str, Any]:
    emulator = serve_in_thread(build_state(), port=_free_port(), tls_dir=folder / "tls")
    source = load_text(SOURCE.format(mode=mode), "web.yaml")
    conn = Connection(emulator.url, AuthSettings(AuthMethod.CLIENT_CREDENTIALS, "emulator-client", "emulator-secret"),
                      ca_bundle=emulator.ca_pem, allowed_hosts=("127.0.0.1",))
    try:
        async with SalesforceClient(conn) as client, open_sync_log(f"sqlite:///{folder / 'sync.db'}") as sync_log:
            client.bulk.poll_initial = 0.1
            pipeline = Pipeline({"web": source}, Delivery({"default": client}, sync_log=sync_log), sync_log,
                                batching=BatchingConfig(linger_ms=200, max_pending=20_000))
            distinct = n // 2
            events = [Event("web", {"type": "identify", "messageId": f"m{i}", "timestamp": "2026-01-01T00:00:00Z",
                                    "traits": {"email": f"user{i % distinct}@example.com", "title": f"T{i}"}})
                      for i in range(n)]
            cpu0, wall0 = time.process_time(), time.monotonic()
            for event in events:
                await pipeline.submit(event)
            await pipeline.drain()
            wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
            counts = await sync_log.counts()
        usage = dict(emulator.state.usage.by_endpoint)
        records = len(emulator.state.store.records("Lead"))
    finally:
        emulator.stop()
    lookups = usage.get("query", 0)
    calls = sum(usage.values())
    floor = math.ceil(records / 200) + lookups if mode == "rest" else None
    return {"benchmark": f"end_to_end_{mode}", "events": n, "records": records, "wall_seconds": round(wall, 2),
            "events_per_second": round(n / wall), "api_calls": calls, "api_calls_by_endpoint": usage,
            "floor": floor, "ratio_to_floor": round(calls / floor, 3) if floor else None,
            "bulk_jobs": len(emulator.state.bulk.jobs),
            "outcomes": {k.value: v for k, v in counts.items()},
            "process_cpu_seconds_per_1000_events": round(cpu / n * 1000, 3),
            "note": "process CPU includes the in-process emulator serving the calls",
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def run(n: int = 20_000, mode: str = "rest") -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        return asyncio.run(_run(n, mode, Path(folder)))
