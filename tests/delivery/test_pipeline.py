"""The pipeline end to end (without the event log): every event ends in recorded outcomes, `done` is
called only after they are recorded, failed events are dead-lettered, batches respect size and linger."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from destination.actions.loader import load_text
from destination.deliver import Delivery
from destination.events import Event
from destination.operations import RecordOp
from destination.outcomes import Status
from destination.pipeline import Pipeline
from destination.synclog import open_sync_log
from destination.synclog.base import SyncLogFilter

SOURCE = load_text("""source: app
actions:
  - name: leads
    when: type = "identify" and traits.email exists
    object: Lead
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields: {Email: $.traits.email, LastName: {path: $.traits.name, default: X}, Company: n/a,
             Title: {path: $.traits.title, truncate: false}}
  - name: cases
    when: type = "track" and event = "Help"
    object: Case
    operation: create
    fields: {Subject: $.properties.subject}
""", "app.yaml")


async def test_every_event_gets_recorded_outcomes_before_done(delivery: Delivery, tls_emulator: Any,
                                                              tmp_path: Path) -> None:
    log = open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}")
    async with log:
        from destination.config import BatchingConfig

        pipeline = Pipeline({"app": SOURCE}, delivery, log, batching=BatchingConfig(linger_ms=50, rest_size=50))
        done: list[str] = []
        events = [Event("app", {"type": "identify", "messageId": f"i{i}", "traits": {"email": f"e{i}@x.example"}})
                  for i in range(120)]
        events += [Event("app", {"type": "identify", "messageId": "bad", "traits": {"email": "b@x.example",
                                                                                   "title": "t" * 300}}),
                   Event("app", {"type": "track", "event": "Help", "messageId": "h1", "properties": {"subject": "S"}}),
                   Event("app", {"type": "page", "messageId": "p1"})]
        for event in events:
            await pipeline.submit(event, lambda e=event: done.append(e.message_id))
        await pipeline.drain()
        await asyncio.sleep(0)
        assert sorted(done) == sorted(e.message_id for e in events)
        counts = await log.counts()
        assert counts[Status.SUCCEEDED] == 121 and counts[Status.FAILED] == 1 and counts[Status.SKIPPED] == 1
        failed = await log.rows(SyncLogFilter(status=Status.FAILED))
        assert failed[0].error_code == "STRING_TOO_LONG"
        dead = await log.dead_letters()
        assert len(dead) == 1 and '"bad"' in dead[0].payload
        sizes = pipeline.metrics.render().decode()
        assert 'destination_outcomes_total{error_code="",object="Lead",status="succeeded"} 120.0' in sizes
    assert len(tls_emulator.state.store.records("Lead")) == 120


async def test_a_full_batcher_makes_the_producer_wait(delivery: Delivery, tmp_path: Path) -> None:
    from destination.config import BatchingConfig

    log = open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}")
    async with log:
        pipeline = Pipeline({"app": SOURCE}, delivery, log,
                            batching=BatchingConfig(linger_ms=10_000, rest_size=200, max_pending=5))
        events = [Event("app", {"type": "identify", "messageId": f"w{i}", "traits": {"email": f"w{i}@x.example"}})
                  for i in range(6)]
        for event in events[:5]:
            await pipeline.submit(event)
        blocked = asyncio.create_task(pipeline.submit(events[5]))
        await asyncio.sleep(0.2)
        assert not blocked.done() and pipeline.batcher.pending == 5
        await pipeline.batcher.drain()
        await asyncio.wait_for(blocked, 5)
        await pipeline.drain()


async def test_bulk_row_failures_reach_the_sync_log_with_their_codes(delivery: Delivery, tmp_path: Path) -> None:
    from destination.config import BatchingConfig

    source = load_text("""source: app
actions:
  - name: surveys
    when: type = "track"
    object: Survey_Response__c
    operation: create
    mode: bulk
    fields: {Sentiment__c: $.properties.s, Score__c: {path: $.properties.score, transform: to_number}}
""", "app.yaml")
    async with open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        pipeline = Pipeline({"app": source}, delivery, log, batching=BatchingConfig(linger_ms=50))
        for i, sentiment in enumerate(["Positive", "Furious", "Neutral", "Bad"]):
            await pipeline.submit(Event("app", {"type": "track", "event": "S", "messageId": f"s{i}",
                                                "properties": {"s": sentiment, "score": i}}))
        await pipeline.drain()
        failed = await log.rows(SyncLogFilter(status=Status.FAILED))
        assert sorted(r.message_id for r in failed) == ["s1", "s3"]
        assert {r.error_code for r in failed} == {"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"}
        assert all(r.fields == ["Sentiment__c"] or r.fields == ("Sentiment__c",) for r in failed)
        assert (await log.counts())[Status.SUCCEEDED] == 2


async def test_an_event_stored_as_it_is_keeps_its_whole_json_in_its_row_and_dead_letter(delivery: Delivery,
                                                                                       tmp_path: Path) -> None:
    """Without redact/hash rules or a writeKey the stored event is the packed JSON itself (never decoded
    again): the row and the dead letter hold the whole event, non-ASCII text and the email included."""
    ok = {"type": "identify", "messageId": "plain", "timestamp": "2026-01-01T00:00:00Z", "userId": "ü1",
          "traits": {"email": "Zoe@X.example", "name": "Zoë ☃", "n": 1.5, "tags": ["a", None]}}
    bad = {"type": "identify", "messageId": "long", "name": "Größe", "context": {"traits": {"email": "Long@x.example"}},
           "traits": {"email": "long@x.example", "title": "t" * 300}}
    async with open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        pipeline = Pipeline({"app": SOURCE}, delivery, log)
        for body in (ok, bad):
            await pipeline.submit(Event("app", body))
        await pipeline.drain()
        [kept] = await log.rows(SyncLogFilter(message_id="plain"))
        [failed] = await log.rows(SyncLogFilter(message_id="long"))
        [letter] = await log.dead_letters()
    assert kept.status is Status.SUCCEEDED and kept.event == ok and kept.email == "zoe@x.example"
    assert failed.status is Status.FAILED and failed.event == bad and failed.email == "long@x.example"
    assert letter.event() == Event("app", bad) and letter.payload == json.dumps(bad, separators=(",", ":"), ensure_ascii=False)


PACKED = load_text("""source: app
actions:
  - name: leads
    when: type = "identify"
    object: Lead
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields: {Email: $.traits.email, LastName: {path: $.traits.name, required: true}, Company: n/a}
  - name: contacts
    when: type = "identify" and traits.contact = true
    object: Contact
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields: {Email: $.traits.email, LastName: {path: $.traits.name, required: true}}
""", "app.yaml")


async def test_a_packed_event_is_mapped_whole_when_written_one_outcome_per_action_and_one_done(
        delivery: Delivery, tls_emulator: Any, tmp_path: Path) -> None:
    """Pending ops wait as their event's JSON (mapped at submit only as far as batching reads): written, they
    are mapped whole — the fields reach Salesforce; a field that fails mapping (the key plan never reads it)
    fails that action when its batch is written, once; an event of two actions is done once, after both."""
    from destination.config import BatchingConfig

    events = [Event("app", {"type": "identify", "messageId": "one", "traits": {"email": "one@x.example",
                                                                             "name": "One"}}),
              Event("app", {"type": "identify", "messageId": "both", "traits": {"email": "both@x.example",
                                                                              "name": "Both", "contact": True}}),
              Event("app", {"type": "identify", "messageId": "noname", "traits": {"email": "nn@x.example"}})]
    async with open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        pipeline = Pipeline({"app": PACKED}, delivery, log, batching=BatchingConfig(linger_ms=10_000))
        done: list[str] = []
        for event in events:
            await pipeline.submit(event, done.append, done_args=(event.message_id,))
        held = [op for group in pipeline.batcher._groups.values() for op in group.current.ops]
        assert len(held) == 4 and not any(isinstance(op, RecordOp) for op in held)  # nothing held whole
        assert not done
        await pipeline.drain()
        rows = await log.rows(limit=10)
    assert sorted(done) == ["both", "noname", "one"]
    by_key = {(r.message_id, r.action): r for r in rows}
    assert len(rows) == 4 and set(by_key) == {("one", "leads"), ("both", "leads"), ("both", "contacts"),
                                              ("noname", "leads")}
    assert by_key[("one", "leads")].status is Status.SUCCEEDED and by_key[("both", "contacts")].status is Status.SUCCEEDED
    failed = by_key[("noname", "leads")]
    assert failed.status is Status.FAILED and failed.error_code == "MAPPING_ERROR" and "LastName" in failed.message
    lead = tls_emulator.state.store.records("Lead")
    assert sorted((r["Email"], r["LastName"], r["Company"]) for r in lead) == [
        ("both@x.example", "Both", "n/a"), ("one@x.example", "One", "n/a")]
    assert by_key[("one", "leads")].event == events[0].body  # the row keeps the whole event


async def test_an_event_json_cannot_hold_as_it_is_waits_whole_with_its_fields(delivery: Delivery, tls_emulator: Any,
                                                                              tmp_path: Path) -> None:
    """An integer past 64 bits cannot be packed: the event's ops are mapped whole at submit and wait so."""
    from destination.config import BatchingConfig

    body = {"type": "identify", "messageId": "big", "traits": {"email": "big@x.example", "name": "Big",
                                                               "n": 2 ** 70}}
    async with open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        pipeline = Pipeline({"app": PACKED}, delivery, log, batching=BatchingConfig(linger_ms=10_000))
        await pipeline.submit(Event("app", body))
        [op] = [op for group in pipeline.batcher._groups.values() for op in group.current.ops]
        assert isinstance(op, RecordOp) and set(op.fields) == {"Email", "LastName", "Company"}
        await pipeline.drain()
        [row] = await log.rows()
    assert row.status is Status.SUCCEEDED
    assert [r["LastName"] for r in tls_emulator.state.store.records("Lead")] == ["Big"]


async def test_bulk_ops_and_ops_a_lookup_reads_wait_whole(delivery: Delivery, tmp_path: Path) -> None:
    """Not packed: a Bulk action's ops (their batch would be mapped again all at once), a child's ops (they
    look up a parent) and a parent's (parents first reads what they write while they wait)."""
    from destination.config import BatchingConfig

    source = load_text("""source: app
actions:
  - name: bulk_leads
    when: type = "identify"
    object: Lead
    operation: upsert
    mode: bulk
    match: {any: {Email: $.traits.email}}
    fields: {Email: $.traits.email, LastName: x, Company: n/a}
  - name: accounts
    when: type = "group"
    object: Account
    operation: upsert
    match: {any: {Name: $.traits.name}}
    fields: {Name: $.traits.name}
  - name: contacts
    when: type = "identify"
    object: Contact
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields: {Email: $.traits.email, LastName: x}
    lookups: {AccountId: {object: Account, match: {any: {Name: $.traits.company}}}}
""", "app.yaml")
    async with open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        pipeline = Pipeline({"app": source}, delivery, log, batching=BatchingConfig(linger_ms=10_000))
        await pipeline.submit(Event("app", {"type": "identify", "messageId": "i", "traits": {"email": "a@x.example",
                                                                                          "company": "Acme"}}))
        await pipeline.submit(Event("app", {"type": "group", "messageId": "g", "traits": {"name": "Acme"}}))
        held = [op for group in pipeline.batcher._groups.values() for op in group.current.ops]
        assert sorted(op.action for op in held if isinstance(op, RecordOp)) == ["accounts", "bulk_leads", "contacts"]
        assert all(op.fields for op in held)  # mapped whole
        await pipeline.drain()
