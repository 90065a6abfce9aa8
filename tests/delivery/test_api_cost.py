"""API cost and budget: 10,000 email upserts cost about two calls per 200 records; the budget ceiling
pauses delivery and resumes it when usage falls."""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
from delivery_support import ops_for

from destination.actions.loader import load_text
from destination.config import BatchingConfig
from destination.deliver import Delivery
from destination.events import Event
from destination.outcomes import Status
from destination.pipeline import Pipeline
from destination.synclog import open_sync_log

SOURCE = load_text("""source: web
actions:
  - name: leads
    when: type = "identify"
    object: Lead
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields: {Email: $.traits.email, LastName: {path: $.traits.name, default: X}, Company: n/a}
""", "web.yaml")


async def test_ten_thousand_upserts_by_email_cost_at_most_1_1_times_the_floor(delivery: Delivery, tls_emulator: Any,
                                                                            tmp_path: Path) -> None:
    n = 10_000
    async with open_sync_log(f"sqlite:///{tmp_path / 's.db'}") as sync_log:
        pipeline = Pipeline({"web": SOURCE}, delivery, sync_log,
                            batching=BatchingConfig(rest_size=200, linger_ms=200, max_pending=20_000))
        before = dict(tls_emulator.state.usage.by_endpoint)
        started = time.monotonic()
        for i in range(n):
            await pipeline.submit(Event("web", {"type": "identify", "messageId": f"m{i}",
                                                "traits": {"email": f"user{i}@x.example"}}))
        await pipeline.drain()
        elapsed = time.monotonic() - started
        assert (await sync_log.counts())[Status.SUCCEEDED] == n
    after = tls_emulator.state.usage.by_endpoint
    calls = {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}
    writes, queries = calls.get("composite/sobjects", 0), calls.get("query", 0)
    floor = math.ceil(n / 200) + queries
    total = sum(calls.values())
    print(f"\n10,000 upserts: {total} API calls ({calls}), floor {floor}, {elapsed:.1f} s")
    assert writes == math.ceil(n / 200)
    assert total <= 1.1 * floor
    assert len(tls_emulator.state.store.records("Lead")) == n


async def test_events_on_one_record_share_its_place_in_a_batch(delivery: Delivery, tls_emulator: Any,
                                                               tmp_path: Path) -> None:
    """4,000 events on 2,000 e-mails, each e-mail twice in a row: batches fill to 200 records, not 200
    events, so the cost is one query and one write per 200 records."""
    async with open_sync_log(f"sqlite:///{tmp_path / 's.db'}") as sync_log:
        pipeline = Pipeline({"web": SOURCE}, delivery, sync_log,
                            batching=BatchingConfig(rest_size=200, linger_ms=5_000, max_pending=20_000))
        before = dict(tls_emulator.state.usage.by_endpoint)
        for i in range(4_000):
            await pipeline.submit(Event("web", {"type": "identify", "messageId": f"m{i}",
                                                "traits": {"email": f"User{i // 2}@x.example", "name": f"n{i}"}}))
        await pipeline.drain()
        assert (await sync_log.counts())[Status.SUCCEEDED] == 4_000
    after = tls_emulator.state.usage.by_endpoint
    assert after["composite/sobjects"] - before.get("composite/sobjects", 0) == 10
    assert after["query"] - before.get("query", 0) == 10
    leads = tls_emulator.state.store.records("Lead")
    assert len(leads) == 2_000
    assert {lead["LastName"] for lead in leads} == {f"n{i}" for i in range(1, 4_000, 2)}


async def test_the_budget_ceiling_pauses_then_resumes(delivery: Delivery, tls_emulator: Any) -> None:
    admin = f"{tls_emulator.url}/__admin"
    verify = ssl.create_default_context(cafile=tls_emulator.ca_pem)
    await asyncio.to_thread(httpx.post, f"{admin}/faults", json={"api_daily_max": 100}, verify=verify)
    await asyncio.to_thread(httpx.post, f"{admin}/usage", json={"total": 79}, verify=verify)
    action = """    object: Lead
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields: {Email: $.traits.email, LastName: x, Company: y}
"""
    first = await delivery.deliver(ops_for(action, [{"traits": {"email": "a@x.example"}}]))
    assert first[0].status is Status.SUCCEEDED  # usage is now over 80 of 100

    async def raise_allocation() -> None:
        await asyncio.sleep(0.6)
        await asyncio.to_thread(httpx.post, f"{admin}/faults", json={"api_daily_max": 10_000}, verify=verify)

    started = time.monotonic()
    raiser = asyncio.create_task(raise_allocation())
    second = await delivery.deliver(ops_for(action, [{"traits": {"email": "b@x.example"}}]))
    await raiser
    assert second[0].status is Status.SUCCEEDED
    assert delivery.budget.pauses == 1 and time.monotonic() - started >= 0.6 and not delivery.budget.paused
