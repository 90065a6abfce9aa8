"""`start: backfill` publishes every record of the object, 200 at a time with a checkpoint after each, to a
Segment-compatible HTTP endpoint (the batch API, the write key as Basic auth) served over a real socket;
a refusing endpoint keeps the watermark where it was and is shown as the object's last error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sf_support import connection_for

from destination.actions.loader import load_text
from destination.salesforce.client import SalesforceClient
from destination.sync_back.publish import publisher_for
from destination.sync_back.runner import SyncBackRunner
from destination.synclog import open_sync_log

SOURCE = """source: app
actions: []
sync_back:
  http: {{url: "http://127.0.0.1:{port}/v1/batch", write_key: back-key}}
  start: backfill
  objects:
    - object: Account
      fields: {{Name: name, Industry: industry}}
"""


async def test_backfill_publishes_every_record_over_http_and_a_refusal_keeps_the_watermark(
        tls_emulator: Any, tmp_path: Path, collector: Any) -> None:
    endpoint, port = collector
    for i in range(450):
        tls_emulator.state.store.insert("Account", {"Name": f"Acme {i}", "Industry": "Energy"})
    source = load_text(SOURCE.format(port=port), "app.yaml")
    assert source.sync_back is not None
    async with SalesforceClient(connection_for(tls_emulator)) as client, \
            open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        publisher = publisher_for(source.sync_back, None)  # no Kafka configured
        runner = SyncBackRunner({"app": source}, {"default": client}, log, {"app": publisher})
        result = await runner.poll_once("app", "Account")
        assert (result.published, result.errors) == (450, [])
        events = [e for batch in endpoint.batches for e in batch]
        assert len(events) == 450 and len({e["groupId"] for e in events}) == 450
        assert {e["type"] for e in events} == {"group"} and events[0]["traits"]["industry"] == "Energy"
        state = next(s for s in await log.sync_back_states("app") if s.object == "Account")
        newest = max(r["SystemModstamp"] for r in tls_emulator.state.store.records("Account"))
        assert (state.watermark, state.published) == (newest, 450)

        endpoint.refuse = True
        tls_emulator.state.store.update("Account", events[0]["groupId"], {"Industry": "Retail"},
                                        user_id="0058c0000000004AAA")
        refused = await runner.poll_once("app", "Account")
        assert refused.published == 0 and "503" in refused.errors[0]
        states = {s.object: s for s in await log.sync_back_states("app")}
        assert states["Account"].watermark == newest and "503" in (states["Account"].last_error or "")

        endpoint.refuse = False
        again = await runner.poll_once("app", "Account")
        assert again.published == 1 and again.repeats >= 0
        assert endpoint.batches[-1][0]["traits"]["industry"] == "Retail"
        await publisher.close()


async def test_polls_wait_while_api_usage_is_over_the_budget_delivery_uses(tls_emulator: Any, tmp_path: Path,
                                                                         collector: Any) -> None:
    from destination.budget import Budget

    endpoint, port = collector
    tls_emulator.state.store.insert("Account", {"Name": "Acme", "Industry": "Energy"})
    source = load_text(SOURCE.format(port=port), "app.yaml")
    assert source.sync_back is not None
    async with SalesforceClient(connection_for(tls_emulator)) as client, \
            open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        publisher = publisher_for(source.sync_back, None)
        runner = SyncBackRunner({"app": source}, {"default": client}, log, {"app": publisher},
                                budget=Budget(ceiling=0.8))
        tls_emulator.state.usage.total = 90_000  # of 100,000 a day: over the 80 % ceiling
        await client.limits()  # the client learns the usage from any response
        skipped = await runner.poll_once("app", "Account")
        assert (skipped.published, endpoint.batches, runner.polls) == (0, [], 0)
        [state] = await log.sync_back_states("app")
        assert "over the budget" in (state.last_error or "")
        tls_emulator.state.usage.total = 10
        await client.limits()
        assert (await runner.poll_once("app", "Account")).published == 1
        await publisher.close()
