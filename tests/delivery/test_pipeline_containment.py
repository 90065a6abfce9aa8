"""A batch is an error boundary: when delivering a batch breaks on one event (a value the write cannot
serialise, a bug in planning), its neighbours are still delivered and that event alone fails, so every event
gets its outcome and the consumer keeps going."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from destination.actions.loader import load_text
from destination.config import BatchingConfig
from destination.deliver import Delivery
from destination.events import Event
from destination.outcomes import Status
from destination.pipeline import Pipeline
from destination.synclog import open_sync_log

SOURCE = load_text("""source: app
actions:
  - name: leads
    when: type = "identify"
    object: Lead
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields: {Email: $.traits.email, LastName: X, Company: n/a,
             NumberOfEmployees: {path: $.traits.employees, transform: to_number}}
""", "app.yaml")


async def test_one_event_that_breaks_its_batch_fails_alone_and_its_neighbours_succeed(
        delivery: Delivery, tls_emulator: Any, tmp_path: Path) -> None:
    async with open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        pipeline = Pipeline({"app": SOURCE}, delivery, log, batching=BatchingConfig(linger_ms=50))
        done: list[str] = []
        employees = {f"n{i}": 10 + i for i in range(5)} | {"huge": "1e5000"}  # 5,001 digits: no JSON number
        events = [Event("app", {"type": "identify", "messageId": m, "traits": {"email": f"{m}@x.example",
                                                                                "employees": n}})
                  for m, n in employees.items()]
        for event in events:
            await pipeline.submit(event, lambda e=event: done.append(e.message_id))
        await pipeline.drain()
        assert sorted(done) == sorted(employees)
        rows = {r.message_id: r for r in await log.rows(limit=100)}
        assert all(rows[f"n{i}"].status is Status.SUCCEEDED for i in range(5))
        assert rows["huge"].status is Status.FAILED
        assert rows["huge"].error_code in ("INTERNAL_ERROR", "MAPPING_ERROR")  # MAPPING_ERROR once to_number bounds it
