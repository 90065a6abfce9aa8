"""Parents before children: a child whose lookup targets a record that an earlier event of the stream
creates or updates is written after that parent (the batcher flushes and waits for the parent's batch
first), and a lookup that still finds nothing says so on the outcome."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from destination.actions.loader import load_text
from destination.batcher import Batcher
from destination.config import BatchingConfig
from destination.deliver import Delivery
from destination.events import Event
from destination.mapping import map_event
from destination.operations import RecordOp
from destination.outcomes import Status
from destination.pipeline import Pipeline
from destination.synclog import open_sync_log
from destination.synclog.base import SyncLogFilter

_WORKSPACES = """source: app
actions:
  - name: accounts
    when: type = "group"
    object: Account
    operation: upsert
    mode: {mode}
    match: {{any: {{External_Id__c: $.groupId}}}}
    fields: {{Name: $.traits.name}}
  - name: deals
    when: type = "track" and event = "Deal Opened"
    object: Opportunity
    operation: create
    fields: {{Name: $.properties.name, StageName: Prospecting, CloseDate: "2026-12-31"}}
    lookups:
      AccountId:
        object: Account
        match: {{any: {{External_Id__c: $.context.groupId}}}}
"""
#: group → Account (upsert by External_Id__c); track → Opportunity linked to the Account by groupId.
WORKSPACES = load_text(_WORKSPACES.format(mode="rest"), "app.yaml")


def _pair(i: int) -> list[Event]:
    group = f"ws-{i}"
    return [Event("app", {"type": "group", "messageId": f"g{i}", "userId": f"u{i}", "groupId": group,
                          "traits": {"name": f"Workspace {i}"}}),
            Event("app", {"type": "track", "event": "Deal Opened", "messageId": f"t{i}", "userId": f"u{i}",
                          "context": {"groupId": group}, "properties": {"name": f"Deal {i}"}})]


@pytest.mark.parametrize("parent_mode", ["rest", "bulk"])
async def test_every_child_gets_the_parent_an_earlier_event_of_the_stream_writes(
        parent_mode: str, delivery: Delivery, tls_emulator: Any, tmp_path: Path) -> None:
    # REST parents race their children's lookups; Bulk parents (a job: seconds) lose every time
    tls_emulator.state.faults.update({"latency_ms": 20})  # each call takes a while, as against a real org
    sources = {"app": load_text(_WORKSPACES.format(mode=parent_mode), "app.yaml")}
    async with open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        pipeline = Pipeline(sources, delivery, log, batching=BatchingConfig(linger_ms=20, rest_size=50))
        for i in range(500):
            for event in _pair(i):
                await pipeline.submit(event)
            if i % 10 == 9:
                await asyncio.sleep(0.005)  # a stream, not one burst: batches start while events still arrive
        await pipeline.drain()
        counts = await log.counts()
    assert counts[Status.SUCCEEDED] == 1000
    store = tls_emulator.state.store
    accounts = {r["External_Id__c"]: r["Id"] for r in store.records("Account")}
    deals = store.records("Opportunity")
    assert len(accounts) == 500 and len(deals) == 500
    unlinked = [d["Name"] for d in deals if not d.get("AccountId")]
    assert not unlinked, f"{len(unlinked)} of 500 Opportunities have no AccountId"
    assert all(d["AccountId"] == accounts[f"ws-{d['Name'].split()[1]}"] for d in deals)


async def test_a_lookup_that_finds_no_parent_is_a_warning_on_the_outcome(delivery: Delivery, tls_emulator: Any,
                                                                         tmp_path: Path) -> None:
    async with open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        pipeline = Pipeline({"app": WORKSPACES}, delivery, log, batching=BatchingConfig(linger_ms=20))
        await pipeline.submit(Event("app", {"type": "track", "event": "Deal Opened", "messageId": "lonely",
                                            "userId": "u", "context": {"groupId": "nowhere"},
                                            "properties": {"name": "Deal X"}}))
        await pipeline.drain()
        row = (await log.rows(SyncLogFilter(message_id="lonely")))[0]
    assert row.status is Status.SUCCEEDED
    assert row.warnings == ("no parent Account found for AccountId by External_Id__c = 'nowhere'",)
    assert tls_emulator.state.store.records("Opportunity")[0].get("AccountId") is None


def _ops(events: list[Event]) -> list[RecordOp]:
    out = []
    for event in events:
        action = next(a for a in WORKSPACES.actions if (a.name == "accounts") == (event.type == "group"))
        op = map_event(WORKSPACES, action, event)
        assert isinstance(op, RecordOp)
        out.append(op)
    return out


async def test_the_batcher_writes_a_childs_parent_first_even_when_the_child_batch_fills_first() -> None:
    written: list[str] = []
    parent_done = asyncio.Event()

    async def flush(batch: list[RecordOp]) -> None:
        if batch[0].object == "Account":
            await asyncio.sleep(0.05)  # a slow parent write: the child must wait for it, not just start after it
            parent_done.set()
        else:
            assert parent_done.is_set(), "the child batch ran before its parent's write finished"
        written.extend(op.event.message_id for op in batch)

    batcher = Batcher(flush, rest_size=2, linger_ms=10_000)
    for op in _ops(_pair(0) + _pair(1)):  # the Opportunity group fills (2 records) while Accounts still linger
        await batcher.add(op)
    await batcher.drain()
    assert written.index("g0") < written.index("t0") and written.index("g1") < written.index("t1")


async def test_children_without_pending_parents_are_not_held_back() -> None:
    started: list[str] = []

    async def flush(batch: list[RecordOp]) -> None:
        started.append(batch[0].object)

    batcher = Batcher(flush, rest_size=1, linger_ms=10_000)
    other_parent = _ops(_pair(8))[0]  # an Account another child needs, not these
    await batcher.add(other_parent)
    await batcher.add(_ops(_pair(7))[1])
    await batcher.add(_ops(_pair(9))[1])  # a second record: the first child's batch (size 1) starts now
    await asyncio.sleep(0.01)
    assert started == ["Opportunity"], "the unrelated Account was not flushed ahead of its linger"
    await batcher.drain()


async def test_parents_that_look_each_other_up_do_not_deadlock_the_batcher() -> None:
    # Accounts whose lookup finds a Contact, Contacts whose lookup finds an Account: each waits only for
    # batches started before it, so a cycle of objects is no cycle of waits
    source = load_text("""source: app
actions:
  - name: accounts
    when: type = "group"
    object: Account
    operation: upsert
    match: {any: {External_Id__c: $.groupId}}
    fields: {Name: $.groupId, Description: $.userId}
    lookups:
      Primary_Contact__c: {object: Contact, match: {any: {External_Id__c: $.userId}}}
  - name: contacts
    when: type = "identify"
    object: Contact
    operation: upsert
    match: {any: {External_Id__c: $.userId}}
    fields: {LastName: $.userId, Department: $.traits.company}
    lookups:
      AccountId: {object: Account, match: {any: {External_Id__c: $.traits.company}}}
""", "app.yaml")
    written: list[str] = []

    async def flush(batch: list[RecordOp]) -> None:
        await asyncio.sleep(0.001)
        written.extend(op.event.message_id for op in batch)

    batcher = Batcher(flush, rest_size=3, linger_ms=5)
    expected = []
    for i in range(40):
        for body in ({"type": "group", "groupId": f"g{i % 5}", "userId": f"u{i}", "messageId": f"g{i}"},
                     {"type": "identify", "userId": f"u{i}", "traits": {"company": f"g{i % 5}"},
                      "messageId": f"i{i}"}):
            event = Event("app", body)
            action = source.actions[0] if body["type"] == "group" else source.actions[1]
            op = map_event(source, action, event)
            assert isinstance(op, RecordOp)
            await batcher.add(op)
            expected.append(body["messageId"])
    await asyncio.wait_for(batcher.drain(), 10)
    assert sorted(written) == sorted(expected)


async def test_a_required_lookup_that_finds_no_parent_fails_the_event(delivery: Delivery, tls_emulator: Any,
                                                                      tmp_path: Path) -> None:
    required = _WORKSPACES.format(mode="rest").replace("        object: Account\n        match:",
                                                      "        object: Account\n        required: true\n        match:")
    source = load_text(required, "app.yaml")
    assert source.actions[1].lookups["AccountId"].required
    async with open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        pipeline = Pipeline({"app": source}, delivery, log, batching=BatchingConfig(linger_ms=20))
        await pipeline.submit(Event("app", {"type": "track", "event": "Deal Opened", "messageId": "orphan",
                                            "userId": "u", "context": {"groupId": "nowhere"},
                                            "properties": {"name": "Deal X"}}))
        await pipeline.drain()
        row = (await log.rows(SyncLogFilter(message_id="orphan")))[0]
    assert row.status is Status.FAILED and row.error_code == "PARENT_NOT_FOUND"
    assert row.message == "no parent Account found for AccountId by External_Id__c = 'nowhere'"
    assert tls_emulator.state.store.records("Opportunity") == []


async def test_a_parent_found_by_website_domain_is_written_first() -> None:
    source = load_text("""source: app
actions:
  - name: accounts
    when: type = "group"
    object: Account
    operation: upsert
    match: {any: {External_Id__c: $.groupId}}
    fields: {Name: $.groupId, Website: $.traits.website}
  - name: contacts
    when: type = "identify"
    object: Contact
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields: {LastName: x, Email: $.traits.email}
    lookups:
      AccountId:
        object: Account
        match: {any: {Website: {path: $.traits.email, transform: email_domain, compare: domain}}}
""", "app.yaml")
    order: list[str] = []

    async def flush(batch: list[RecordOp]) -> None:
        await asyncio.sleep(0.02 if batch[0].object == "Account" else 0)
        order.extend(op.object for op in batch)

    batcher = Batcher(flush, rest_size=1, linger_ms=10_000)
    for action, body in ((source.actions[0], {"type": "group", "groupId": "acme", "userId": "u",
                                              "traits": {"website": "https://www.Acme.example/about"}}),
                         (source.actions[1], {"type": "identify", "userId": "u", "traits": {"email": "jo@acme.example"}}),
                         (source.actions[1], {"type": "identify", "userId": "v", "traits": {"email": "al@other.example"}})):
        op = map_event(source, action, Event("app", {**body, "messageId": str(len(order))}))
        assert isinstance(op, RecordOp)
        await batcher.add(op)  # the third op fills the Contact batch of one record: it starts now
    await batcher.drain()
    assert order[:2] == ["Account", "Contact"], order
