"""analytics-python → HTTP ingest → event log (embedded SQLite, or Kafka on tansu) → delivery → emulator,
with records and sync-log rows checked; two consumers in one group share partitions, each event once."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from running_emulator import free_port
from settings_support import OPERATOR, settings_file

from destination.config import load_settings
from destination.service import Service, build

REPO = Path(__file__).resolve().parents[2]


def _settings(tmp_path: Path, emulator: Any, kafka: str | None = None, group: str | None = None) -> Path:
    if not kafka:
        return settings_file(tmp_path, emulator)
    topic = group or "e2e"
    return settings_file(tmp_path, emulator, f"kafka: {{bootstrap_servers: '{kafka}', topic: t-{topic}, "
                         f"group_id: g-{topic}, dead_letter_topic: d-{topic}, idempotent: false, "
                         "create_topics: {enabled: true, replication_factor: 1}}\n",
                         event_log="{kind: kafka}")


async def _serve(service: Service, stack: AsyncExitStack) -> str:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(service.app(), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())

    async def stop() -> None:
        server.should_exit = True
        await task

    stack.push_async_callback(stop)
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
        await asyncio.sleep(0.01)
    return f"http://127.0.0.1:{port}"


def _send_with_analytics_python(url: str, n: int, prefix: str) -> None:
    import segment.analytics as analytics

    client = analytics.Client(write_key="web-app-demo-key", host=url, max_retries=2, upload_size=100)
    for i in range(n):
        client.identify(f"{prefix}-{i}", {"email": f"{prefix}{i}@example.com", "last_name": f"L{i}",
                                          "company": "Acme"})
    client.track(f"{prefix}-0", "Order Completed", {"order_id": f"{prefix}-o1", "total": 120})
    client.flush()
    client.join()


async def _get(url: str, **params: Any) -> httpx.Response:
    async with httpx.AsyncClient(headers=OPERATOR) as http:
        return await http.get(url, params=params)


async def _until(predicate: Any, seconds: float = 60) -> None:
    for _ in range(int(seconds / 0.1)):
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("log_kind", ["embedded", "kafka"])
async def test_analytics_python_to_salesforce_records_and_sync_log(log_kind: str, tls_emulator: Any, tmp_path: Path,
                                                                   request: pytest.FixtureRequest) -> None:
    kafka = request.getfixturevalue("kafka_bootstrap") if log_kind == "kafka" else None
    settings = load_settings(_settings(tmp_path, tls_emulator, kafka, uuid.uuid4().hex[:8]))
    async with AsyncExitStack() as stack:
        service = await build(settings, stack)
        url = await _serve(service, stack)
        assert service.consumer is not None
        consumer = asyncio.create_task(service.consumer.run())
        await asyncio.to_thread(_send_with_analytics_python, url, 50, log_kind)

        async def all_recorded() -> bool:
            body = (await _get(f"{url}/v1/sync-log", limit=1000)).json()
            return sum(body["counts"].values()) >= 51

        await _until(all_recorded)
        service.consumer.stop()
        await consumer
        await service.consumer.drain()
        body = (await _get(f"{url}/v1/sync-log", status="succeeded", object="Lead", limit=1000)).json()
        assert body["counts"]["succeeded"] == 50 and body["counts"]["failed"] == 0
        metrics = (await _get(f"{url}/metrics")).text
        assert "destination_outcomes_total" in metrics
    leads = {r["Email"]: r for r in tls_emulator.state.store.records("Lead")}
    assert len(leads) == 50 and leads[f"{log_kind}7@example.com"]["LastName"] == "L7"
    orders = tls_emulator.state.store.records("Opportunity")
    assert [(o["External_Id__c"], o["Amount"], o["StageName"]) for o in orders] == [(f"{log_kind}-o1", 120,
                                                                                     "Closed Won")]


async def test_two_consumers_in_one_group_share_partitions_and_deliver_each_event_once(
        kafka_bootstrap: str, tls_emulator: Any, tmp_path: Path) -> None:
    group = uuid.uuid4().hex[:8]
    settings = load_settings(_settings(tmp_path, tls_emulator, kafka_bootstrap, group))
    async with AsyncExitStack() as stack:
        first = await build(settings, stack)
        url = await _serve(first, stack)
        second = await build(settings, stack)
        assert first.consumer is not None and second.consumer is not None
        tasks = [asyncio.create_task(s.consumer.run()) for s in (first, second)]  # type: ignore[union-attr]
        await asyncio.sleep(3)  # both join the group before events arrive
        await asyncio.to_thread(_send_with_analytics_python, url, 120, "pair")

        async def delivered() -> bool:
            return len(tls_emulator.state.store.records("Lead")) >= 120 and \
                first.consumer.consumed + second.consumer.consumed >= 121  # type: ignore[union-attr]

        await _until(delivered, 90)
        for service in (first, second):
            service.consumer.stop()  # type: ignore[union-attr]
        await asyncio.gather(*tasks)
        for service in (first, second):
            await service.consumer.drain()  # type: ignore[union-attr]
        shares = (first.consumer.consumed, second.consumer.consumed)  # type: ignore[union-attr]
    assert sum(shares) == 121, shares
    assert len(tls_emulator.state.store.records("Lead")) == 120
